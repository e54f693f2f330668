package pop3server

import (
	"errors"
	"strconv"
)

// The TRANSACTION state commands (RFC 1939 sections 5 and 7) and QUIT's
// UPDATE state (RFC 1939 section 6).

// cmdStat: RFC 1939 section 5, STAT: "+OK nn mm", the number of messages
// and their size in octets, messages marked deleted not counted.
func (s *session) cmdStat(cmd command) error {
	if len(cmd.Args) != 0 {
		return syntaxError("STAT takes no argument")
	}
	n, octets, err := s.drop.totals(s.ctx())
	if err != nil {
		return err
	}
	s.ok("%d %d", n, octets)
	return nil
}

// cmdList: RFC 1939 section 5, LIST [msg].
func (s *session) cmdList(cmd command) error {
	d := s.drop
	switch len(cmd.Args) {
	case 0:
		n, octets, err := d.totals(s.ctx())
		if err != nil {
			return err
		}
		s.ok("%d messages (%d octets)", n, octets)
		for i, m := range d.msgs {
			if !m.deleted {
				s.line(strconv.Itoa(i+1) + " " + strconv.FormatInt(m.size, 10))
			}
		}
		s.end()
	case 1:
		n, m, err := d.get(cmd.Args[0])
		if err != nil {
			return err
		}
		size, err := d.size(s.ctx(), m)
		if err != nil {
			return err
		}
		s.ok("%d %d", n, size)
	default:
		return syntaxError("LIST takes at most one argument")
	}
	return nil
}

// cmdUidl: RFC 1939 section 7, UIDL [msg].
func (s *session) cmdUidl(cmd command) error {
	d := s.drop
	switch len(cmd.Args) {
	case 0:
		s.ok("Unique-ID listing follows")
		for i := range d.msgs {
			if m := &d.msgs[i]; !m.deleted {
				s.line(strconv.Itoa(i+1) + " " + d.uidl(m))
			}
		}
		s.end()
	case 1:
		n, m, err := d.get(cmd.Args[0])
		if err != nil {
			return err
		}
		s.ok("%d %s", n, d.uidl(m))
	default:
		return syntaxError("UIDL takes at most one argument")
	}
	return nil
}

// cmdRetr: RFC 1939 section 5, RETR msg: the whole message, dot-stuffed.
func (s *session) cmdRetr(cmd command) error {
	if len(cmd.Args) != 1 {
		return syntaxError("RETR takes one argument: a message number")
	}
	_, m, err := s.drop.get(cmd.Args[0])
	if err != nil {
		return err
	}
	raw, err := s.drop.read(s.ctx(), m)
	if err != nil {
		return err
	}
	s.ok("%d octets", m.size)
	writeMessage(s.w, raw, -1)
	return nil
}

// cmdTop: RFC 1939 section 7, TOP msg n: the header, the blank line and
// the first n lines of the body.
func (s *session) cmdTop(cmd command) error {
	if len(cmd.Args) != 2 {
		return syntaxError("TOP takes two arguments: a message number and a line count")
	}
	_, m, err := s.drop.get(cmd.Args[0])
	if err != nil {
		return err
	}
	lines, ok := parseDecimal(cmd.Args[1])
	if !ok {
		return syntaxError("TOP line count must be a non-negative number")
	}
	raw, err := s.drop.read(s.ctx(), m)
	if err != nil {
		return err
	}
	s.ok("Top of message follows")
	writeMessage(s.w, raw, lines)
	return nil
}

// cmdDele: RFC 1939 section 5, DELE msg: marks the message; nothing
// changes in the store before QUIT.
func (s *session) cmdDele(cmd command) error {
	if len(cmd.Args) != 1 {
		return syntaxError("DELE takes one argument: a message number")
	}
	n, m, err := s.drop.get(cmd.Args[0])
	if err != nil {
		return err
	}
	m.deleted = true
	s.ok("Message %d deleted", n)
	return nil
}

// cmdNoop: RFC 1939 section 5, NOOP.
func (s *session) cmdNoop(cmd command) error {
	if len(cmd.Args) != 0 {
		return syntaxError("NOOP takes no argument")
	}
	s.ok("")
	return nil
}

// cmdRset: RFC 1939 section 5, RSET: unmark every message marked deleted.
func (s *session) cmdRset(cmd command) error {
	if len(cmd.Args) != 0 {
		return syntaxError("RSET takes no argument")
	}
	for i := range s.drop.msgs {
		s.drop.msgs[i].deleted = false
	}
	s.ok("Maildrop has %s", plural(len(s.drop.msgs), "message"))
	return nil
}

// cmdQuitTransaction enters the UPDATE state (RFC 1939 section 6): the
// marked messages are removed, then the lock is released and the
// connection closed, whether or not the removal worked.
func (s *session) cmdQuitTransaction(cmd command) error {
	s.done = true
	n, err := s.drop.update(s.ctx())
	if err != nil {
		s.log.Error("UPDATE failed", "err", err)
		// RFC 1939 section 6: "-ERR some deleted messages not removed".
		// Every change is one transaction, so it is all of them.
		if errors.Is(err, errLockLost) {
			return err
		}
		return &replyError{"SYS/TEMP", "Deleted messages not removed, try again later"}
	}
	s.drop.close()
	s.log.Info("logged out", "deleted", n)
	if n == 0 {
		s.ok("%s signing off", s.srv.cfg.Hostname)
	} else {
		s.ok("%s signing off (%s deleted)", s.srv.cfg.Hostname, plural(n, "message"))
	}
	return nil
}

// plural spells "1 message", "2 messages".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return strconv.Itoa(n) + " " + noun + "s"
}
