package integration

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Several devices of one user on the real binary: what one does, the
// others see at once (DESIGN.md section 4).

// imapEvent is one unilateral response a device saw.
type imapEvent struct {
	kind  string // "EXISTS", "EXPUNGE", "FETCH"
	num   uint32 // message count for EXISTS, sequence number otherwise
	flags []imap.Flag
}

func (e imapEvent) String() string { return fmt.Sprintf("%s %d %v", e.kind, e.num, e.flags) }

// imapIdleDevice logs in with imapclient, selects mailbox and reports every
// unilateral EXISTS, EXPUNGE and FETCH on the returned channel.
func imapIdleDevice(t *testing.T, r *Roost, user, mailbox string) (*imapclient.Client, <-chan imapEvent) {
	t.Helper()
	events := make(chan imapEvent, 64)
	c := imapLoginClient(t, r, user, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Expunge: func(seq uint32) { events <- imapEvent{kind: "EXPUNGE", num: seq} },
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				events <- imapEvent{kind: "EXISTS", num: *d.NumMessages}
			}
		},
		Fetch: func(m *imapclient.FetchMessageData) {
			if b, err := m.Collect(); err == nil {
				events <- imapEvent{kind: "FETCH", num: b.SeqNum, flags: b.Flags}
			}
		},
	}})
	if _, err := c.Select(mailbox, nil).Wait(); err != nil {
		t.Fatalf("SELECT %s: %v", mailbox, err)
	}
	return c, events
}

// imapExpectEvent waits for an event matching want, skipping others (a
// server may, for instance, send a FETCH before an EXPUNGE); it fails after
// imapWait.
func imapExpectEvent(t *testing.T, events <-chan imapEvent, what string, want func(imapEvent) bool) imapEvent {
	t.Helper()
	var seen []string
	deadline := time.After(imapWait)
	for {
		select {
		case e := <-events:
			if want(e) {
				return e
			}
			seen = append(seen, e.String())
		case <-deadline:
			t.Fatalf("idling device never saw %s; saw %q", what, seen)
		}
	}
}

// imapRawConn is a device that speaks IMAP by hand, to check exact
// responses (VANISHED, MODSEQ) that imapclient does not surface.
type imapRawConn struct {
	t   *testing.T
	c   net.Conn
	br  *bufio.Reader
	tag int
}

func imapDialRaw(t *testing.T, addr string) *imapRawConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	rc := &imapRawConn{t: t, c: c, br: bufio.NewReader(c)}
	rc.expect("greeting", regexp.MustCompile(`^\* OK `))
	return rc
}

// send writes one command line with a fresh tag and returns the tag.
func (rc *imapRawConn) send(line string) string {
	rc.t.Helper()
	rc.tag++
	tag := fmt.Sprintf("d%d", rc.tag)
	if _, err := fmt.Fprintf(rc.c, "%s %s\r\n", tag, line); err != nil {
		rc.t.Fatalf("send %q: %v", line, err)
	}
	return tag
}

// expect reads lines until one matches re and returns it with the lines
// before it.
func (rc *imapRawConn) expect(what string, re *regexp.Regexp) (string, []string) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(imapWait))
	var seen []string
	for {
		l, err := rc.br.ReadString('\n')
		if err != nil {
			rc.t.Fatalf("waiting for %s: %v; saw %q", what, err, seen)
		}
		l = strings.TrimRight(l, "\r\n")
		if re.MatchString(l) {
			return l, seen
		}
		seen = append(seen, l)
	}
}

// ok sends line and waits for its tagged OK.
func (rc *imapRawConn) ok(line string) []string {
	rc.t.Helper()
	tag := rc.send(line)
	l, seen := rc.expect(line, regexp.MustCompile("^"+tag+" "))
	if !strings.HasPrefix(l, tag+" OK") {
		rc.t.Fatalf("%s: %s (after %q)", line, l, seen)
	}
	return seen
}

func TestIMAPDevices(t *testing.T) {
	r, users := imapStart(t, "multi")
	user := users[0]

	// Device B prepares three messages.
	b := imapLoginClient(t, r, user, nil)
	var uids []imap.UID
	for i := range 3 {
		uids = append(uids, imapAppend(t, b, "INBOX", imapTestMessage(fmt.Sprintf("device msg %d", i+1), "hello")))
	}

	// Device A idles through imapclient; device D idles by hand with
	// QRESYNC, where expunges must arrive as VANISHED (RFC 7162 section
	// 3.2.10) and flag changes carry UID and MODSEQ (sections 3.1, 3.2.4).
	a, events := imapIdleDevice(t, r, user, "INBOX")
	idle, err := a.Idle()
	if err != nil {
		t.Fatal(err)
	}
	d := imapDialRaw(t, r.Addr["imap"])
	d.ok(fmt.Sprintf("LOGIN %q %q", user, imapPassword))
	d.ok("ENABLE QRESYNC")
	d.ok("SELECT INBOX")
	idleTag := d.send("IDLE")
	d.expect("IDLE continuation", regexp.MustCompile(`^\+ `))

	if _, err := b.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	// 1. B flags message 1.
	if err := b.Store(imap.UIDSetNum(uids[0]), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	imapExpectEvent(t, events, "FETCH 1 with \\Flagged", func(e imapEvent) bool {
		return e.kind == "FETCH" && e.num == 1 && slices.Contains(e.flags, imap.FlagFlagged)
	})
	l, _ := d.expect("FETCH 1 with MODSEQ", regexp.MustCompile(`^\* 1 FETCH \(`))
	if !strings.Contains(l, `\Flagged`) || !strings.Contains(l, "MODSEQ (") || !strings.Contains(l, fmt.Sprintf("UID %d", uids[0])) {
		t.Errorf("QRESYNC device got %q; want FLAGS with \\Flagged, UID and MODSEQ (RFC 7162 sections 3.1, 3.2.4)", l)
	}

	// 2. B moves message 2 to Archive.
	if _, err := b.Move(imap.UIDSetNum(uids[1]), "Archive").Wait(); err != nil {
		t.Fatal(err)
	}
	imapExpectEvent(t, events, "EXPUNGE 2 after MOVE", func(e imapEvent) bool { return e.kind == "EXPUNGE" && e.num == 2 })
	if l, seen := d.expect("VANISHED after MOVE", regexp.MustCompile(`^\* (VANISHED|\d+ EXPUNGE)`)); l != fmt.Sprintf("* VANISHED %d", uids[1]) {
		t.Errorf("QRESYNC device got %q (after %q), want \"* VANISHED %d\" (RFC 7162 section 3.2.10)", l, seen, uids[1])
	}

	// 3. B deletes and expunges message 3 (now sequence 2).
	if err := b.Store(imap.UIDSetNum(uids[2]), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	imapExpectEvent(t, events, "EXPUNGE 2 after EXPUNGE", func(e imapEvent) bool { return e.kind == "EXPUNGE" && e.num == 2 })
	if l, seen := d.expect("VANISHED after EXPUNGE", regexp.MustCompile(`^\* (VANISHED|\d+ EXPUNGE)`)); l != fmt.Sprintf("* VANISHED %d", uids[2]) {
		t.Errorf("QRESYNC device got %q (after %q), want \"* VANISHED %d\"", l, seen, uids[2])
	}

	// 4. B creates a folder (no IDLE notice without NOTIFY; A checks it
	// after IDLE).
	if err := b.Create("Projects/Roost", nil).Wait(); err != nil {
		t.Fatal(err)
	}

	// 5. Mail arrives over SMTP (the MX listener).
	arrived := imapTestMessage("device smtp arrival", "from the internet")
	imapSMTPDeliver(t, r, "sender@example.net", user, arrived)
	imapExpectEvent(t, events, "EXISTS 2 after SMTP", func(e imapEvent) bool { return e.kind == "EXISTS" && e.num == 2 })
	d.expect("EXISTS after SMTP", regexp.MustCompile(`^\* 2 EXISTS$`))

	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatalf("IDLE end: %v", err)
	}
	fmt.Fprintf(d.c, "DONE\r\n")
	d.expect("IDLE end", regexp.MustCompile("^"+idleTag+" OK"))
	if names := imapMailboxNames(t, a); !names["Projects/Roost"] {
		t.Errorf("device A does not list the folder B made: %v", names)
	}

	// Device C logs in afterwards and sees the final state.
	c := imapLoginClient(t, r, user, nil)
	inbox := imapMailbox(t, c, "INBOX")
	if len(inbox) != 2 || inbox[0].UID != uids[0] || !inbox[0].has(imap.FlagFlagged) || !strings.HasSuffix(string(inbox[1].Body), "\r\n"+string(arrived)) {
		// The MX adds its Received: trace field on top (RFC 5321 section 4.4).
		t.Errorf("device C's INBOX: %+v", inbox)
	}
	archive := imapMailbox(t, c, "Archive")
	if len(archive) != 1 || !strings.Contains(string(archive[0].Body), "Subject: device msg 2\r\n") {
		t.Errorf("device C's Archive: %d messages %+v", len(archive), archive)
	}
	if names := imapMailboxNames(t, c); !names["Projects/Roost"] {
		t.Errorf("device C does not list Projects/Roost: %v", names)
	}
	for _, cl := range []*imapclient.Client{a, b, c} {
		if err := cl.Logout().Wait(); err != nil {
			t.Errorf("LOGOUT: %v", err)
		}
	}
}
