package imapserver

import (
	"errors"
	"strconv"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/message"
)

// cmdFetch serves FETCH and UID FETCH: RFC 9051 sections 6.4.5 and 6.4.9,
// RFC 3516 (BINARY), RFC 7162 (MODSEQ, CHANGEDSINCE, VANISHED), RFC 8474
// (EMAILID, THREADID), RFC 8514 (SAVEDATE), RFC 8970 (PREVIEW).
func (s *session) cmdFetch(c *command) error {
	a := c.args.(fetchArgs)
	sel := s.sel
	if a.vanished && (!c.uid || !s.qresync) {
		// RFC 7162 section 3.2.6: only UID FETCH, only with QRESYNC.
		return bad("", "VANISHED needs UID FETCH and QRESYNC enabled")
	}
	uids, err := s.resolve(a.set, c.uid)
	if err != nil {
		return err
	}
	var fields mailstore.FetchFields
	needRaw, setSeen, hasFlags := false, false, false
	for _, it := range a.items {
		switch it.name {
		case "INTERNALDATE":
			fields |= mailstore.FetchInternalDate
		case "RFC822.SIZE":
			fields |= mailstore.FetchSize
		case "ENVELOPE":
			fields |= mailstore.FetchEnvelope
		case "BODY", "BODYSTRUCTURE":
			fields |= mailstore.FetchBody
		case "PREVIEW":
			fields |= mailstore.FetchPreview
		case "EMAILID", "THREADID", "SAVEDATE":
			fields |= mailstore.FetchIDs
		case "MODSEQ":
			// RFC 7162 section 3.1: FETCH MODSEQ enables CONDSTORE.
			s.condstore = true
		case "FLAGS":
			hasFlags = true
		case "RFC822", "RFC822.TEXT", "RFC822.HEADER", "BODY[]", "BINARY[]", "BINARY.SIZE":
			fields |= mailstore.FetchIDs | mailstore.FetchBody
			needRaw = true
			// RFC 9051 section 6.4.5: BODY[...] (not PEEK) sets \Seen;
			// RFC 3501 section 6.4.5 says the same of RFC822 and RFC822.TEXT.
			if !it.peek && (it.name == "RFC822" || it.name == "RFC822.TEXT" || it.name == "BODY[]" || it.name == "BINARY[]") {
				setSeen = true
			}
		}
	}
	if a.hasChangedSince {
		s.condstore = true
	}
	if a.vanished {
		since := mailstore.ModSeq(a.changedSince)
		v, err := s.srv.store.Vanished(s.ctx(), s.acct.ID, sel.mb.ID, since)
		if err != nil {
			return err
		}
		// The floor is read after the tombstones, not taken from the
		// SELECT snapshot: a purge that raced the read above (or came
		// after SELECT) shows in it, so no purged expunge goes unsaid.
		mb, err := s.srv.store.GetMailboxByID(s.ctx(), s.acct.ID, sel.mb.ID)
		if err != nil {
			return err
		}
		// "*" is taken as the largest possible UID here, not the largest
		// one left: RFC 7162 section 3.2.6 reports expunged UIDs of the
		// set, and those may lie above every UID the mailbox still has.
		set := a.set.withStar(mailstore.MaxUID)
		var out mailstore.UIDSet
		if since < mb.VanishedFloor {
			// RFC 7162 section 3.2.6: the tombstones after since may be
			// gone, so every UID of the set the session does not have is
			// reported (more than were expunged is allowed, fewer not).
			// The bound is the session's UIDNEXT, not the store's: a UID
			// above it may be a delivery this session has yet to announce.
			out = missingUIDs(set.Normalize(), sel.uids, max(max(sel.mb.UIDNext, 1)-1, lastUID(sel.uids)))
		} else {
			var gone []mailstore.UID
			for _, u := range v {
				if set.Contains(u) && sel.seqOf(u) == 0 {
					gone = append(gone, u)
				}
			}
			out = mailstore.CompactUIDs(gone)
		}
		if len(out) > 0 {
			b := append([]byte("* VANISHED (EARLIER) "), out.String()...)
			s.bw.Write(append(b, "\r\n"...))
		}
	}
	if len(uids) == 0 {
		return nil
	}
	set := mailstore.CompactUIDs(uids)
	seenNow := map[mailstore.UID]bool{}
	if setSeen && !sel.readOnly {
		res, err := s.srv.store.StoreFlags(s.ctx(), s.acct.ID, mailstore.StoreFlagsRequest{
			MailboxID: sel.mb.ID, UIDs: set, Mode: mailstore.FlagsAdd, Flags: []string{mailstore.FlagSeen},
		})
		if err != nil {
			return err
		}
		own := sel.ownWrite(res.ModSeq)
		for _, m := range res.Changed {
			seenNow[m.UID] = true
			if !own {
				sel.reported[m.UID] = m.ModSeq
			}
		}
	}
	utf8OK := s.utf8 || s.rev2
	hasModSeq := hasItem(a.items, "MODSEQ")
	var ferr error
	// One buffer for every message's response: bw copies it.
	buf := make([]byte, 0, 1024)
	err = s.srv.store.Fetch(s.ctx(), s.acct.ID, sel.mb.ID, set, fields, mailstore.ModSeq(a.changedSince), func(m *mailstore.Message) error {
		seq := sel.seqOf(m.UID)
		if seq == 0 {
			return nil
		}
		var raw []byte
		if needRaw {
			var err error
			if raw, err = s.srv.store.ReadBlob(s.ctx(), m.BlobID); err != nil {
				return err
			}
		}
		s.announceKeywords(m.Flags)
		b := append(buf[:0], "* "...)
		b = appendUint(b, uint64(seq))
		b = append(b, " FETCH ("...)
		n := 0
		item := func(name string) {
			if n > 0 {
				b = append(b, ' ')
			}
			n++
			b = append(b, name...)
		}
		// RFC 7162 section 3.1 (erratum 1807): a FETCH that sets \Seen
		// under CONDSTORE reports a flag change, which such a client
		// files by UID and MODSEQ.
		seenReport := s.condstore && seenNow[m.UID]
		withUID := c.uid || s.qresync || seenReport
		if withUID {
			// RFC 9051 section 6.4.9: UID FETCH always returns UID;
			// RFC 7162 section 3.2.4: so does every FETCH under QRESYNC.
			item("UID ")
			b = appendUint(b, uint64(m.UID))
		}
		if (seenNow[m.UID] && !hasFlags) || (a.hasChangedSince && !hasFlags) {
			item("FLAGS ")
			b = appendFlags(b, m.Flags)
		}
		if (a.hasChangedSince || seenReport) && !hasModSeq {
			// RFC 7162 section 3.1.4.1: CHANGEDSINCE implies MODSEQ.
			s.sentModSeq(m.ModSeq)
			item("MODSEQ (")
			b = appendUint(b, uint64(m.ModSeq))
			b = append(b, ')')
		}
		for _, it := range a.items {
			switch it.name {
			case "UID":
				if withUID {
					continue
				}
				item("UID ")
				b = appendUint(b, uint64(m.UID))
			case "FLAGS":
				item("FLAGS ")
				b = appendFlags(b, m.Flags)
			case "INTERNALDATE":
				item("INTERNALDATE ")
				b = append(b, imapDate(m.InternalDate)...)
			case "RFC822.SIZE":
				item("RFC822.SIZE ")
				b = appendUint(b, uint64(m.Size))
			case "ENVELOPE":
				item("ENVELOPE ")
				b = appendEnvelope(b, m.Envelope, utf8OK)
			case "BODY":
				item("BODY ")
				b = appendBodyStructure(b, m.Body, false, utf8OK, 0)
			case "BODYSTRUCTURE":
				item("BODYSTRUCTURE ")
				b = appendBodyStructure(b, m.Body, true, utf8OK, 0)
			case "MODSEQ":
				s.sentModSeq(m.ModSeq)
				item("MODSEQ (")
				b = appendUint(b, uint64(m.ModSeq))
				b = append(b, ')')
			case "EMAILID":
				item("EMAILID (")
				b = append(b, m.EmailID...)
				b = append(b, ')')
			case "THREADID":
				// RFC 8474 section 5.2: NIL when there is no thread id.
				if m.ThreadID == "" {
					item("THREADID NIL")
				} else {
					item("THREADID (")
					b = append(b, m.ThreadID...)
					b = append(b, ')')
				}
			case "SAVEDATE":
				if m.SaveDate.IsZero() {
					item("SAVEDATE NIL")
				} else {
					item("SAVEDATE ")
					b = append(b, imapDate(m.SaveDate)...)
				}
			case "PREVIEW":
				item("PREVIEW ")
				b = appendNString(b, m.Preview, utf8OK)
			case "RFC822":
				item("RFC822 ")
				b = appendLiteral(b, raw)
			case "RFC822.HEADER":
				item("RFC822.HEADER ")
				b = appendLiteral(b, sectionData(raw, m.Body, &section{spec: "HEADER"}))
			case "RFC822.TEXT":
				item("RFC822.TEXT ")
				b = appendLiteral(b, sectionData(raw, m.Body, &section{spec: "TEXT"}))
			case "BODY[]":
				item("BODY[")
				b = append(b, it.section.String()...)
				b = append(b, ']')
				b = appendPartial(b, it, sectionData(raw, m.Body, it.section))
			case "BINARY[]", "BINARY.SIZE":
				data, err := binaryData(raw, m.Body, it.section.part)
				if errors.Is(err, message.ErrUnknownEncoding) {
					// RFC 3516 section 4.3.
					ferr = no("UNKNOWN-CTE", "Cannot decode this part's content-transfer-encoding")
					return nil
				}
				if it.name == "BINARY.SIZE" {
					item("BINARY.SIZE[")
					b = append(b, it.section.String()...)
					b = append(b, "] "...)
					b = appendUint(b, uint64(len(data)))
					continue
				}
				item("BINARY[")
				b = append(b, it.section.String()...)
				b = append(b, ']')
				b = appendPartial(b, it, data)
			}
		}
		b = append(b, ")\r\n"...)
		buf = b
		_, err := s.bw.Write(b)
		return err
	})
	if err != nil {
		return err
	}
	return ferr
}

func hasItem(items []fetchItem, name string) bool {
	for _, it := range items {
		if it.name == name {
			return true
		}
	}
	return false
}

// appendPartial renders "<origin> data" for a partial fetch, else " data"
// (RFC 9051 section 6.4.5: the response gives the origin octet only).
func appendPartial(b []byte, it fetchItem, data []byte) []byte {
	if it.partial {
		b = append(b, '<')
		b = strconv.AppendInt(b, it.offset, 10)
		b = append(b, '>')
		data = slice(data, it.offset, it.offset+it.count)
	}
	b = append(b, ' ')
	return appendLiteral(b, data)
}
