package integration

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// interimap synchronises two IMAP stores statefully with QRESYNC; here
// both are roost accounts on the same server, so every step exercises
// roost's CONDSTORE/QRESYNC, LIST-EXTENDED, LIST-STATUS and UIDPLUS from
// both ends.

func imapInterimapConfig(addr, dbPath, remoteUser, localUser string) string {
	host, port, _ := net.SplitHostPort(addr)
	side := func(name, user string) string {
		return fmt.Sprintf("[%s]\ntype = imap\nhost = %s\nport = %s\nSTARTTLS = NO\nusername = %s\npassword = %s\n\n",
			name, host, port, user, imapPassword)
	}
	return "database = " + dbPath + "\n\n" + side("remote", remoteUser) + side("local", localUser)
}

// imapAccountView is an account's content: mailbox -> one "flags|body"
// string per message, sorted, so two accounts compare independent of UIDs.
func imapAccountView(t *testing.T, c *imapclient.Client) map[string][]string {
	t.Helper()
	view := map[string][]string{}
	for name := range imapMailboxNames(t, c) {
		var msgs []string
		for _, m := range imapMailbox(t, c, name) {
			flags := make([]string, 0, len(m.Flags))
			for _, f := range m.Flags {
				flags = append(flags, strings.ToLower(string(f)))
			}
			slices.Sort(flags)
			msgs = append(msgs, strings.Join(flags, " ")+"|"+string(m.Body))
		}
		slices.Sort(msgs)
		view[name] = msgs
	}
	return view
}

// imapSameAccounts fails unless both accounts hold the same mailboxes with
// the same messages and flags.
func imapSameAccounts(t *testing.T, what string, a, b *imapclient.Client) map[string][]string {
	t.Helper()
	va, vb := imapAccountView(t, a), imapAccountView(t, b)
	for name, msgs := range va {
		other, ok := vb[name]
		if !ok {
			t.Errorf("%s: mailbox %q on the remote side only", what, name)
			continue
		}
		if !slices.Equal(msgs, other) {
			t.Errorf("%s: mailbox %q differs:\nremote %q\nlocal  %q", what, name, msgs, other)
		}
	}
	for name := range vb {
		if _, ok := va[name]; !ok {
			t.Errorf("%s: mailbox %q on the local side only", what, name)
		}
	}
	return va
}

// imapCountWith counts the messages of msgs (as imapAccountView renders
// them) whose body contains needle and, if flag is set, carry it.
func imapCountWith(msgs []string, needle, flag string) int {
	n := 0
	for _, m := range msgs {
		flags, body, _ := strings.Cut(m, "|")
		if strings.Contains(body, needle) && (flag == "" || slices.Contains(strings.Fields(flags), strings.ToLower(flag))) {
			n++
		}
	}
	return n
}

func TestIMAPInterimap(t *testing.T) {
	interimap := imapTool(t, "interimap", "interimap")
	r, users := imapStart(t, "iremote", "ilocal")
	remote := imapLoginClient(t, r, users[0], nil)
	local := imapLoginClient(t, r, users[1], nil)

	// A non-ASCII name travels as modified UTF-7 (RFC 3501 section 5.1.3):
	// interimap has no UTF-8 mode.
	for _, mb := range []string{"Lists/Go", "Entwürfe"} {
		if err := remote.Create(mb, nil).Wait(); err != nil {
			t.Fatal(err)
		}
	}
	imapAppend(t, remote, "INBOX", imapTestMessage("interimap one", "remote inbox"), imap.FlagFlagged)
	uidTwo := imapAppend(t, remote, "INBOX", imapTestMessage("interimap two", "remote inbox"))
	imapAppend(t, remote, "Lists/Go", imapTestMessage("interimap list", "golang-nuts"), imap.FlagSeen, "$Label1")
	imapAppend(t, remote, "Entwürfe", imapTestMessage("interimap draft", "ein Entwurf"), imap.FlagDraft)
	uidLocal := imapAppend(t, local, "INBOX", imapTestMessage("interimap local", "written on the local side"), imap.FlagDraft)

	dir := t.TempDir()
	conf := filepath.Join(dir, "config")
	if err := os.WriteFile(conf, []byte(imapInterimapConfig(r.Addr["imap"], filepath.Join(dir, "state.db"), users[0], users[1])), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "XDG_DATA_HOME=" + dir}
	run := func(what string) {
		t.Helper()
		out := imapRun(t, dir, env, interimap, "--config="+conf)
		t.Logf("interimap (%s):\n%s", what, out)
	}

	// 1. Initial sync: the union of both accounts on each side.
	run("initial")
	view := imapSameAccounts(t, "after the initial sync", remote, local)
	if n := imapCountWith(view["Lists/Go"], "golang-nuts", "$Label1"); n != 1 {
		t.Errorf("Lists/Go with its keyword: %d copies, want 1: %q", n, view["Lists/Go"])
	}
	if n := imapCountWith(view["Entwürfe"], "ein Entwurf", `\Draft`); n != 1 {
		t.Errorf("Entwürfe: %d copies of the draft, want 1: %q", n, view["Entwürfe"])
	}
	if n := len(view["INBOX"]); n != 3 {
		t.Errorf("INBOX after the initial sync has %d messages, want 3 (2 remote + 1 local)", n)
	}
	if n := imapCountWith(view["INBOX"], "written on the local side", `\Draft`); n != 1 {
		t.Errorf("local message with \\Draft on the remote: %d copies", n)
	}
	if t.Failed() {
		t.FailNow()
	}

	// 2. A flag change on the remote and an expunge on the local side
	// propagate on the next run (CONDSTORE/QRESYNC's changed-since and
	// VANISHED (EARLIER) at work).
	if _, err := remote.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := remote.Store(imap.UIDSetNum(uidTwo), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagSeen, "$Work"}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := remote.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if _, err := local.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := local.Store(imap.UIDSetNum(uidLocal), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := local.UIDExpunge(imap.UIDSetNum(uidLocal)).Close(); err != nil {
		t.Fatal(err)
	}
	if err := local.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	// And a new message arrives by SMTP on the remote.
	imapSMTPDeliver(t, r, "sender@example.net", users[0], imapTestMessage("interimap smtp", "delivered by MX"))

	run("second")
	view = imapSameAccounts(t, "after the second sync", remote, local)
	if n := imapCountWith(view["INBOX"], "interimap two", `\Seen`); n != 1 || imapCountWith(view["INBOX"], "interimap two", "$Work") != 1 {
		t.Errorf("flag change did not reach the local side: %q", view["INBOX"])
	}
	if n := imapCountWith(view["INBOX"], "written on the local side", ""); n != 0 {
		t.Errorf("local expunge did not reach the remote: %q", view["INBOX"])
	}
	if n := imapCountWith(view["INBOX"], "delivered by MX", ""); n != 1 {
		t.Errorf("SMTP delivery not copied: %q", view["INBOX"])
	}
	if n := len(view["INBOX"]); n != 3 {
		t.Errorf("INBOX after the second sync has %d messages, want 3", n)
	}

	// 3. Nothing changed: a third run is a no-op and the sides stay equal.
	run("third")
	imapSameAccounts(t, "after a quiet run", remote, local)
}
