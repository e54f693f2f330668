package smtpserver

import (
	"context"
	"strings"
	"testing"
)

// RFC 5321 section 4.5.1: mail to "postmaster" at a served domain, its
// local part case-insensitive, goes through the normal address resolution:
// delivered when an alias or account exists, 550 5.1.1 when none does.
//
// The bare "RCPT TO:<Postmaster>" form is not tested here: go-smtp v0.25.1
// answers it itself (501 5.5.2, parse.go parseMailbox requires "@") before
// Session.Rcpt is called, so no code of this package sees it.
func TestMXPostmasterAtDomain(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{}, false)

	w := dialWire(t, addr)
	w.cmd("EHLO client.test", "250 ")
	w.cmd("MAIL FROM:<s@remote.test>", "250 ")
	w.cmd("RCPT TO:<PostMaster@X.Test>", "550 5.1.1 ")
	w.cmd("QUIT", "221 ")

	if err := e.store.AddAlias(context.Background(), "postmaster@x.test", "bob@x.test"); err != nil {
		t.Fatal(err)
	}
	w = dialWire(t, addr)
	w.cmd("EHLO client.test", "250 ")
	w.cmd("MAIL FROM:<s@remote.test>", "250 ")
	w.cmd("RCPT TO:<PostMaster@X.Test>", "250 ")
	w.deliver(msg("s@remote.test", "postmaster@x.test", "pm1"))

	got := e.mailbox(t, e.bob, "")
	if len(got) != 1 || !strings.Contains(string(got[0]), "Subject: pm1\r\n") {
		t.Fatalf("bob's INBOX: %d messages, want the postmaster message", len(got))
	}
}

// TestMXPostmasterConfigured: with Config.Postmaster set, postmaster@ a
// served domain that has no such address of its own reaches the
// configured address; other unknown users still get 550, and other
// domains are still not relayed.
func TestMXPostmasterConfigured(t *testing.T) {
	e := newEnv(t)
	_, addr := e.start(t, nil, Config{Postmaster: "bob@x.test"}, false)
	w := dialWire(t, addr)
	w.cmd("EHLO client.test", "250 ")
	w.cmd("MAIL FROM:<s@remote.test>", "250 ")
	w.cmd("RCPT TO:<nobody@x.test>", "550 5.1.1 ")
	w.cmd("RCPT TO:<postmaster@elsewhere.test>", "554 5.7.1 ")
	w.cmd("RCPT TO:<POSTMASTER@x.test>", "250 ")
	w.deliver(msg("s@remote.test", "postmaster@x.test", "pm2"))
	got := e.mailbox(t, e.bob, "")
	if len(got) != 1 || !strings.Contains(string(got[0]), "Subject: pm2\r\n") {
		t.Fatalf("bob's INBOX: %d messages, want the postmaster message", len(got))
	}
}
