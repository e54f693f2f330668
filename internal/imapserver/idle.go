package imapserver

import (
	"bufio"
	"errors"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/linger"
	"github.com/roost-mail/roost/internal/mailstore"
)

// changePage bounds one read of the change feed.
const changePage = 1000

// sync brings the selected view up to date from the change feed and writes
// the untagged responses: FETCH for flag changes, EXISTS for new messages
// and, when allowExpunge, EXPUNGE or VANISHED for removed ones (RFC 9051
// section 7.5.1: never during FETCH, STORE or SEARCH; RFC 7162 section
// 3.2.10: VANISHED once QRESYNC is enabled). It reads the feed only after a
// wake-up from the account's watcher.
func (s *session) sync(allowExpunge bool) error {
	sel := s.sel
	if sel == nil {
		return nil
	}
	woken := sel.mustRead
	select {
	case <-sel.watcher.C:
		woken = true
	default:
	}
	if woken {
		sel.mustRead = false
		if err := s.readChanges(); err != nil {
			return err
		}
	}
	if sel.deleted {
		// The selected mailbox was deleted by another session: nothing
		// here can be answered any more.
		s.bye("Selected mailbox was deleted")
		return nil
	}
	if allowExpunge && len(sel.gone) > 0 {
		s.flushExpunges()
	}
	return nil
}

func (s *session) readChanges() error {
	sel := s.sel
	if sel.selfApplied {
		// The wake-up is most likely for this session's own write, which
		// it has applied already: one look at the account's modseq tells
		// whether anyone else wrote since.
		sel.selfApplied = false
		// Wake-ups name the modseq they are for: when none names one
		// past what this session applied, there is nothing to read.
		if latest, known := sel.watcher.Latest(); known && latest <= sel.seen {
			return nil
		}
		cur, err := s.srv.store.HighestModSeq(s.ctx(), s.acct.ID)
		if err != nil {
			return err
		}
		if cur == sel.seen {
			return nil
		}
	}
	before := len(sel.uids)
	for {
		changes, err := s.srv.feed.changes(s.ctx(), s.srv.store, s.acct.ID, sel.seen, changePage)
		if err != nil {
			return err
		}
		// A page can be short and still not be the last: the store never
		// splits a group sharing one modseq (Store.Changes), so it may stop
		// before a large group that follows. Only an empty page ends it.
		if len(changes) == 0 {
			break
		}
		for i := range changes {
			s.applyChange(&changes[i], before)
		}
	}
	if len(sel.uids) != before {
		// RFC 9051 section 7.4.1: EXISTS announces the new size.
		s.writef("* %d EXISTS\r\n", len(sel.uids))
	}
	return nil
}

// applyChange applies one change to the view. ch may be shared with other
// sessions (feedReads): it is only read. announced is how many of
// sel.uids the client has been told of (by EXISTS): those keep their
// sequence numbers, the rest are new in this read.
func (s *session) applyChange(ch *mailstore.Change, announced int) {
	sel := s.sel
	if ch.ModSeq > sel.seen {
		sel.seen = ch.ModSeq
	}
	if ch.MailboxID != sel.mb.ID {
		return
	}
	switch ch.Kind {
	case mailstore.ChangeMailbox:
		if ch.Deleted {
			sel.deleted = true
		}
	case mailstore.ChangeMessage:
		seq := sel.seqOf(ch.UID)
		if seq == 0 {
			// The feed gives each message once, at its latest modseq, so
			// new messages need not come in UID order: one whose flags
			// changed since it arrived comes after younger ones. Each is
			// placed among the not yet announced UIDs by UID, which keeps
			// the map ascending (RFC 9051 section 2.3.1.2: sequence
			// numbers follow UID order) and counts every new message in
			// the EXISTS that readChanges sends (section 7.4.1). A UID
			// below the announced ones is no new message: the view had
			// it at SELECT, or it was expunged.
			if announced > 0 && ch.UID <= sel.uids[announced-1] {
				return
			}
			fresh := sel.uids[announced:]
			i, found := slices.BinarySearch(fresh, ch.UID)
			if !found {
				sel.uids = slices.Insert(sel.uids, announced+i, ch.UID)
			}
			return
		}
		if seq > announced {
			// Not announced yet, and its number may still move as other
			// new UIDs are placed: the client learns of it from EXISTS
			// and fetches its flags itself (RFC 9051 section 7.4.1).
			return
		}
		if _, gone := sel.gone[ch.UID]; gone {
			return
		}
		if r, ok := sel.reported[ch.UID]; ok {
			delete(sel.reported, ch.UID)
			if r >= ch.ModSeq {
				return
			}
		}
		// RFC 9051 section 7.5.2: unsolicited FETCH of the new flags.
		s.writeFlagsFetch(seq, ch.UID, ch.Flags, ch.ModSeq)
	case mailstore.ChangeExpunge:
		if sel.seqOf(ch.UID) > 0 {
			sel.gone[ch.UID] = struct{}{}
			if sel.heldModSeq == 0 || ch.ModSeq < sel.heldModSeq {
				sel.heldModSeq = ch.ModSeq
			}
		}
	}
}

// flushExpunges announces every pending expunge and drops the UIDs from the
// view. EXPUNGEs go from the highest sequence number down, so that each
// number is right when it is read (RFC 9051 section 7.5.1).
func (s *session) flushExpunges() {
	sel := s.sel
	var gone []mailstore.UID
	kept := sel.uids[:0]
	var seqs []int
	for i, u := range sel.uids {
		if _, ok := sel.gone[u]; ok {
			gone = append(gone, u)
			seqs = append(seqs, i+1)
			continue
		}
		kept = append(kept, u)
	}
	if s.qresync {
		// RFC 7162 section 3.2.10.
		b := appendUIDSet([]byte("* VANISHED "), gone)
		s.bw.Write(append(b, "\r\n"...))
	} else {
		for i := len(seqs) - 1; i >= 0; i-- {
			s.writef("* %d EXPUNGE\r\n", seqs[i])
		}
	}
	sel.uids = kept
	sel.heldModSeq = 0
	for _, u := range gone {
		delete(sel.gone, u)
		delete(sel.reported, u)
	}
	if len(s.saved) > 0 {
		s.saved = slices.DeleteFunc(s.saved, func(u mailstore.UID) bool { return containsUID(gone, u) })
	}
}

// expunged records UIDs this session removed itself and announces them.
func (s *session) expunged(uids []mailstore.UID) {
	for _, u := range uids {
		if s.sel.seqOf(u) > 0 {
			s.sel.gone[u] = struct{}{}
		}
	}
	s.flushExpunges()
}

type lineResult struct {
	line []byte
	err  error
}

// cmdIdle: RFC 2177. Changes are pushed as they are committed. The session
// goroutine waits on the watcher; one short-lived goroutine reads the DONE
// line, since a read cannot be selected on.
func (s *session) cmdIdle(c *command) error {
	if err := s.sync(true); err != nil {
		return err
	}
	if s.state == stateLogout {
		return nil
	}
	s.writef("+ idling\r\n")
	if err := s.flush(); err != nil {
		return err
	}
	// An idle session holds no write buffer: it is made again when there
	// is something to say (wake-ups are rare next to idle time).
	s.bw = nil
	defer s.ensureWriter()
	_ = s.conn.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
	lines := make(chan lineResult, 1)
	go func() {
		l, err := s.readLine(nil, 64)
		lines <- lineResult{l, err}
	}()
	var wake <-chan struct{}
	if s.sel != nil {
		wake = s.sel.watcher.C
	}
	for {
		select {
		case r := <-lines:
			s.ensureWriter()
			if r.err != nil && r.err != errLineTooLong {
				if errors.Is(r.err, os.ErrDeadlineExceeded) && !s.srv.closing.Load() {
					s.bye("Autologout; idle for too long")
				} else if s.srv.closing.Load() {
					s.bye("Server shutting down")
				} else {
					s.state = stateLogout
				}
				return nil
			}
			if r.err == errLineTooLong || !strings.EqualFold(string(r.line), "DONE") {
				return bad("", "Expected DONE")
			}
			return nil
		case <-wake:
			s.ensureWriter()
			if err := s.readChanges(); err != nil {
				s.logger().Warn("idle: reading changes", "err", err)
				continue
			}
			if s.sel.deleted {
				s.bye("Selected mailbox was deleted")
				linger.Start(s.conn, s.raw) // the DONE reader returns by then
				<-lines
				return nil
			}
			if len(s.sel.gone) > 0 {
				s.flushExpunges()
			}
			if err := s.flush(); err != nil {
				_ = s.conn.Close()
				<-lines
				return err
			}
			s.bw = nil
		case <-s.srv.done:
			s.ensureWriter()
			s.bye("Server shutting down")
			linger.Start(s.conn, s.raw)
			<-lines
			return nil
		}
	}
}

func (s *session) ensureWriter() {
	if s.bw == nil {
		s.bw = bufio.NewWriterSize(s.conn, writeBufSize)
	}
}
