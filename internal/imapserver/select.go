package imapserver

import (
	"cmp"
	"context"
	"slices"
	"sort"

	"github.com/roost-mail/roost/internal/mailstore"
)

// selection is a session's view of its selected mailbox: the UID list that
// is its sequence-number map, expunges not yet announced, and how far down
// the account's change feed it has read.
type selection struct {
	mb       mailstore.Mailbox
	readOnly bool
	uids     []mailstore.UID
	// gone holds UIDs expunged elsewhere but not yet announced: they keep
	// their sequence numbers until EXPUNGE/VANISHED may be sent.
	gone map[mailstore.UID]struct{}
	// seen: changes up to this modseq have been applied to the view.
	seen mailstore.ModSeq
	// reported holds flag states this session already sent (its own
	// STORE, \Seen set by FETCH), so the feed does not repeat them.
	reported map[mailstore.UID]mailstore.ModSeq
	watcher  *mailstore.Watcher
	// deleted: another session deleted the mailbox.
	deleted bool
	// mustRead: this session changed the mailbox itself (APPEND, COPY
	// into it) and reads the feed at the next sync without waiting for
	// the wake-up, so that its own EXISTS is never late.
	mustRead bool
	// selfApplied: seen was moved past this session's own write (see
	// ownWrite), so the wake-up it causes needs no feed read unless
	// someone else wrote too.
	selfApplied bool
	// keywords: those announced in FLAGS (keywords.go).
	keywords keywordSet
	// heldModSeq is the lowest modseq of the expunges in gone (0: none),
	// which a MODSEQ sent past it must not let the client skip (RFC 7162
	// section 3.2; see execute).
	heldModSeq mailstore.ModSeq
}

// ownWrite is called after this session's own write that the store gave
// modseq m and whose effect on the view the session has applied itself.
// When m directly follows seen, no other change can lie between (one
// operation, one modseq; commit order is modseq order: Store.Changes), so
// the view is current up to m without reading the feed. It reports
// whether it moved seen; if not, the feed brings the change as usual.
func (sel *selection) ownWrite(m mailstore.ModSeq) bool {
	if m == 0 || m != sel.seen+1 {
		return false
	}
	sel.seen = m
	sel.selfApplied = true
	return true
}

func (s *session) ctx() context.Context { return s.srv.ctx }

// mailboxName decodes a mailbox name from the wire: modified UTF-7 unless
// the client speaks UTF-8 (RFC 9051 section 5.1, RFC 6855 section 3).
func (s *session) mailboxName(raw string) (string, error) {
	name := raw
	if !s.utf8 && !s.rev2 {
		var err error
		if name, err = decodeMUTF7(raw); err != nil {
			return "", no("CANNOT", "Malformed modified UTF-7 mailbox name")
		}
	}
	return mailstore.NormalizeMailboxName(name)
}

func (s *session) deselect() {
	if s.sel != nil && s.sel.watcher != nil {
		s.sel.watcher.Close()
	}
	s.sel = nil
	s.saved = nil
	s.state = stateAuth
}

// cmdSelect serves SELECT and EXAMINE: RFC 9051 sections 6.3.2 and 6.3.3,
// RFC 7162 sections 3.1.8 (CONDSTORE) and 3.2.5 (QRESYNC).
func (s *session) cmdSelect(c *command) error {
	a := c.args.(selectArgs)
	if s.sel != nil {
		// RFC 9051 section 6.3.2: a failed SELECT leaves no mailbox
		// selected; RFC 7162 section 3.2.11: CLOSED marks the switch.
		s.deselect()
		s.writef("* OK [CLOSED] Previous mailbox is now closed\r\n")
	}
	if a.qresync != nil && !s.qresync {
		return bad("", "QRESYNC must be enabled first")
	}
	if a.condstore {
		s.condstore = true
	}
	name, err := s.mailboxName(a.mailbox)
	if err != nil {
		return err
	}
	// Watch before the snapshot: a change committed after it wakes us.
	w := s.srv.store.Watch(s.acct.ID)
	v, err := s.srv.store.SelectMailbox(s.ctx(), s.acct.ID, name)
	if err != nil {
		w.Close()
		return err
	}
	mb, uids := v.Mailbox, v.UIDs
	sel := &selection{
		mb:       mb,
		readOnly: c.name == "EXAMINE",
		uids:     uids,
		gone:     map[mailstore.UID]struct{}{},
		seen:     v.ModSeq,
		reported: map[mailstore.UID]mailstore.ModSeq{},
		watcher:  w,
	}
	for _, k := range v.Keywords {
		sel.keywords.add(k)
	}
	// The mailbox row is of the same snapshot as the UIDs: its UIDNEXT is
	// above each of them, its HIGHESTMODSEQ covers every change to them.
	uidNext := mb.UIDNext
	highest := mb.HighestModSeq
	if highest == 0 {
		highest = 1 // RFC 7162 section 3.1.1: mod-sequence values are non-zero
	}
	s.writef("* %d EXISTS\r\n", len(uids))
	if !s.rev2 {
		// RFC 3501 section 6.3.1: RECENT is required; Roost has none.
		s.writef("* 0 RECENT\r\n")
	}
	s.writeFlagLists(sel)
	if !s.rev2 && v.FirstUnseen != 0 {
		// RFC 3501 section 6.3.1: the first unseen message (IMAP4rev2
		// dropped the response).
		s.writef("* OK [UNSEEN %d] First unseen\r\n", sel.seqOf(v.FirstUnseen))
	}
	s.writef("* OK [UIDVALIDITY %d] UIDs valid\r\n", mb.UIDValidity)
	s.writef("* OK [UIDNEXT %d] Predicted next UID\r\n", uidNext)
	// RFC 7162 section 3.1.1: HIGHESTMODSEQ on every SELECT/EXAMINE.
	s.writef("* OK [HIGHESTMODSEQ %d] Highest\r\n", highest)
	if s.rev2 {
		// RFC 9051 section 6.3.2: the mailbox's LIST response.
		b := s.appendMailbox([]byte(`* LIST () "/" `), mb.Name)
		s.bw.Write(append(b, "\r\n"...))
	}
	s.sel = sel
	s.state = stateSelected
	if a.qresync != nil && a.qresync.uidValidity == mb.UIDValidity {
		if err := s.qresyncSelect(a.qresync); err != nil {
			s.deselect()
			return err
		}
	}
	if sel.readOnly {
		c.okCode = "READ-ONLY"
	} else {
		c.okCode = "READ-WRITE"
	}
	c.okText = c.name + " completed"
	return nil
}

// qresyncSelect reports what the client missed since its modseq: RFC 7162
// section 3.2.5.
func (s *session) qresyncSelect(q *qresyncArgs) error {
	sel := s.sel
	ctx := s.ctx()
	since := mailstore.ModSeq(q.modSeq)
	// known-uids stays ranges: RFC 7162 section 3.2.5.2 wants every
	// expunged UID among them, and "1:*" may span billions of UIDs.
	var known mailstore.UIDSet
	if q.hasKnown && !q.knownUIDs.dollar {
		// RFC 7162 section 3.2.5: "*" in known-uids is the highest UID.
		known = q.knownUIDs.withStar(lastUID(sel.uids)).Normalize()
	}
	var vanished mailstore.UIDSet
	if since < sel.mb.VanishedFloor {
		// Tombstones below the floor were purged: everything the client
		// may know that is not here any more is reported (section 3.2.5.2
		// allows UIDs that never existed).
		if known == nil {
			known = mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}
		}
		vanished = missingUIDs(known, sel.uids, max(sel.mb.UIDNext, 1)-1)
	} else {
		v, err := s.srv.store.Vanished(ctx, s.acct.ID, sel.mb.ID, since)
		if err != nil {
			return err
		}
		var gone []mailstore.UID
		for _, u := range v {
			// Expunged after our snapshot: the sync reports it later.
			if sel.seqOf(u) != 0 {
				continue
			}
			if known != nil && !rangesContain(known, u) {
				continue
			}
			gone = append(gone, u)
		}
		slices.Sort(gone)
		vanished = mailstore.CompactUIDs(gone)
	}
	if len(vanished) > 0 {
		b := append([]byte("* VANISHED (EARLIER) "), vanished.String()...)
		s.bw.Write(append(b, "\r\n"...))
	}
	if len(sel.uids) == 0 {
		return nil
	}
	// RFC 7162 section 3.2.5.2: FETCH (UID, FLAGS, MODSEQ) of every
	// message changed since the client's modseq.
	changed, ok, err := s.changedFromFeed(since)
	if err != nil {
		return err
	}
	if ok {
		for i := range changed {
			m := &changed[i]
			if seq := sel.seqOf(m.UID); seq > 0 {
				sel.reported[m.UID] = m.ModSeq
				s.writeFlagsFetch(seq, m.UID, m.Flags, m.ModSeq)
			}
		}
		return nil
	}
	return s.srv.store.Fetch(ctx, s.acct.ID, sel.mb.ID, mailstore.CompactUIDs(sel.uids), 0, since, func(m *mailstore.Message) error {
		seq := sel.seqOf(m.UID)
		if seq == 0 {
			return nil
		}
		sel.reported[m.UID] = m.ModSeq
		s.writeFlagsFetch(seq, m.UID, m.Flags, m.ModSeq)
		return nil
	})
}

// changedFromFeed lists the selected mailbox's messages changed after
// since (current flags and modseq, ascending UID) from the account's
// change feed, which is indexed by modseq: a client back after a short
// absence costs what changed, not a pass over the whole mailbox. When the
// feed holds more entries than the mailbox has messages (a client away
// for long), reading on would cost more than the pass: ok is false and
// the caller fetches instead.
func (s *session) changedFromFeed(since mailstore.ModSeq) (changed []mailstore.Change, ok bool, err error) {
	sel := s.sel
	latest := map[mailstore.UID]int{}
	read := 0
	for {
		page, err := s.srv.store.Changes(s.ctx(), s.acct.ID, since, changePage)
		if err != nil {
			return nil, false, err
		}
		if len(page) == 0 {
			// Only an empty page is the end (see readChanges).
			break
		}
		for i := range page {
			ch := &page[i]
			since = max(since, ch.ModSeq)
			if ch.Kind != mailstore.ChangeMessage || ch.MailboxID != sel.mb.ID {
				continue
			}
			// A message changed again between two pages comes twice:
			// the later state wins.
			if j, dup := latest[ch.UID]; dup {
				changed[j] = *ch
				continue
			}
			latest[ch.UID] = len(changed)
			changed = append(changed, *ch)
		}
		read += len(page)
		if read > len(sel.uids) {
			return nil, false, nil
		}
	}
	slices.SortFunc(changed, func(a, b mailstore.Change) int { return cmp.Compare(a.UID, b.UID) })
	return changed, true, nil
}

// cmdClose serves CLOSE and UNSELECT (RFC 9051 sections 6.4.1, 6.4.2).
func (s *session) cmdClose(c *command) error {
	sel := s.sel
	if c.name == "CLOSE" && !sel.readOnly && !sel.deleted {
		// CLOSE expunges silently, as EXPUNGE does (expunge.go).
		if len(sel.uids) > 0 {
			if _, _, err := s.srv.store.ExpungeDeleted(s.ctx(), s.acct.ID, sel.mb.ID, mailstore.CompactUIDs(sel.uids)); err != nil {
				return err
			}
		}
	}
	s.deselect()
	return nil
}

func (s *session) writeFlagsFetch(seq int, uid mailstore.UID, flags []string, modseq mailstore.ModSeq) {
	s.announceKeywords(flags)
	b := make([]byte, 0, 96)
	b = append(b, "* "...)
	b = appendUint(b, uint64(seq))
	b = append(b, " FETCH (UID "...)
	b = appendUint(b, uint64(uid))
	b = append(b, " FLAGS "...)
	b = appendFlags(b, flags)
	if s.condstore {
		s.sentModSeq(modseq)
		b = append(b, " MODSEQ ("...)
		b = appendUint(b, uint64(modseq))
		b = append(b, ')')
	}
	b = append(b, ")\r\n"...)
	s.bw.Write(b)
}

// seqOf returns the sequence number of uid, 0 if the session does not know it.
func (sel *selection) seqOf(u mailstore.UID) int {
	i := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] >= u })
	if i < len(sel.uids) && sel.uids[i] == u {
		return i + 1
	}
	return 0
}

// known keeps the UIDs (ascending) the session knows.
func (sel *selection) known(uids []mailstore.UID) []mailstore.UID {
	out := uids[:0:0]
	for _, u := range uids {
		if sel.seqOf(u) > 0 {
			out = append(out, u)
		}
	}
	return out
}

func lastUID(uids []mailstore.UID) mailstore.UID {
	if len(uids) == 0 {
		return 0
	}
	return uids[len(uids)-1]
}

func containsUID(sorted []mailstore.UID, u mailstore.UID) bool {
	_, ok := slices.BinarySearch(sorted, u)
	return ok
}

// missingUIDs returns, as ranges, the UIDs of set (normalized) up to hi
// that are not in uids (ascending). It walks the gaps between the UIDs
// rather than listing every UID of set: "1:*" spans up to 2^32 of them.
func missingUIDs(set mailstore.UIDSet, uids []mailstore.UID, hi mailstore.UID) mailstore.UIDSet {
	var out mailstore.UIDSet
	for _, r := range set {
		next, top := max(r.Lo, 1), min(r.Hi, hi)
		if next > top {
			continue
		}
		covered := false // top is in uids (next cannot pass it: top may be MaxUID)
		i := sort.Search(len(uids), func(i int) bool { return uids[i] >= next })
		for ; i < len(uids) && uids[i] <= top; i++ {
			if uids[i] > next {
				out = append(out, mailstore.UIDRange{Lo: next, Hi: uids[i] - 1})
			}
			if uids[i] == top {
				covered = true
				break
			}
			next = uids[i] + 1
		}
		if !covered {
			out = append(out, mailstore.UIDRange{Lo: next, Hi: top})
		}
	}
	return out
}

// rangesContain reports whether u is in set (normalized: sorted, apart),
// by binary search, as a client may send many ranges.
func rangesContain(set mailstore.UIDSet, u mailstore.UID) bool {
	i := sort.Search(len(set), func(i int) bool { return set[i].Hi >= u })
	return i < len(set) && set[i].Lo <= u
}

// resolve turns a sequence set into the UIDs (ascending) the session knows.
// Sequence numbers beyond the mailbox are an error (RFC 9051 section 9,
// seq-number); UID ranges simply match what exists, "*" being the highest
// known UID (section 6.4.9).
func (s *session) resolve(set numSet, uid bool) ([]mailstore.UID, error) {
	sel := s.sel
	if set.dollar {
		// RFC 5182 section 2.1: "$" is the saved search result.
		return sel.known(s.saved), nil
	}
	var out []mailstore.UID
	if !uid {
		n := mailstore.UID(len(sel.uids))
		for _, r := range set.withStar(n) {
			if r.Lo == 0 || r.Hi > n {
				return nil, bad("", "Invalid sequence number")
			}
			out = append(out, sel.uids[r.Lo-1:r.Hi]...)
		}
	} else {
		for _, r := range set.withStar(lastUID(sel.uids)) {
			i := sort.Search(len(sel.uids), func(i int) bool { return sel.uids[i] >= r.Lo })
			for ; i < len(sel.uids) && sel.uids[i] <= r.Hi; i++ {
				out = append(out, sel.uids[i])
			}
		}
	}
	if len(set.ranges) > 1 {
		slices.Sort(out)
		out = slices.Compact(out)
	}
	return out, nil
}
