package integration

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-smtp"
)

// IMAP against the real binary, driven by clients nobody here wrote:
// Python's imaplib, mbsync, interimap, and go-imap's imapclient as the
// independent observer. Helpers carry an imap prefix: the package is shared
// with other protocols' tests.

const (
	imapPassword = "imap secret"
	// imapWait bounds how long a test waits for the server to push a
	// change; it is a hang guard, not a performance assertion.
	imapWait = 20 * time.Second
)

// imapTool finds an external client from the Debian package pkg: required
// in CI (.ci/run installs it), skipped elsewhere.
func imapTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI but not installed (Debian package %s): %v", name, pkg, err)
		}
		t.Skipf("%s not installed (apt-get install %s): %v", name, pkg, err)
	}
	return p
}

// imapStart runs roost with domain example.org and the given local parts
// as users, all with imapPassword. It returns the server and the users'
// full addresses in order.
func imapStart(t *testing.T, locals ...string) (*Roost, []string) {
	t.Helper()
	r := StartRoost(t, BuildRoost(t), "")
	if code, _, errs := r.CLI(t, "", "domain", "add", "example.org"); code != 0 {
		t.Fatalf("domain add: %s", errs)
	}
	users := make([]string, len(locals))
	for i, l := range locals {
		users[i] = l + "@example.org"
		if code, _, errs := r.CLI(t, imapPassword+"\n", "user", "add", users[i], "--password-stdin"); code != 0 {
			t.Fatalf("user add %s: %s", users[i], errs)
		}
	}
	return r, users
}

// imapLoginClient connects imapclient to roost's plain IMAP listener (loopback:
// passwords allowed) and logs in.
func imapLoginClient(t *testing.T, r *Roost, user string, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(r.Addr["imap"], opts)
	if err != nil {
		t.Fatalf("dial IMAP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login(user, imapPassword).Wait(); err != nil {
		t.Fatalf("LOGIN %s: %v", user, err)
	}
	return c
}

// imapAppend stores raw in mailbox with flags and returns its UID.
func imapAppend(t *testing.T, c *imapclient.Client, mailbox string, raw []byte, flags ...imap.Flag) imap.UID {
	t.Helper()
	cmd := c.Append(mailbox, int64(len(raw)), &imap.AppendOptions{Flags: flags})
	if _, err := cmd.Write(raw); err != nil {
		t.Fatalf("APPEND %s: %v", mailbox, err)
	}
	if err := cmd.Close(); err != nil {
		t.Fatalf("APPEND %s: %v", mailbox, err)
	}
	data, err := cmd.Wait()
	if err != nil {
		t.Fatalf("APPEND %s: %v", mailbox, err)
	}
	if data.UID == 0 {
		t.Fatalf("APPEND %s: no APPENDUID (RFC 4315 section 3)", mailbox)
	}
	return data.UID
}

// imapMessage is one message as an observer sees it.
type imapMessage struct {
	UID   imap.UID
	Flags []imap.Flag
	Body  []byte
}

func (m imapMessage) String() string {
	return fmt.Sprintf("{UID %d flags %v body %q}", m.UID, m.Flags, m.Body)
}

func (m imapMessage) has(f imap.Flag) bool {
	for _, g := range m.Flags {
		if strings.EqualFold(string(g), string(f)) {
			return true
		}
	}
	return false
}

// imapMailbox SELECTs mailbox read-only and returns every message with its
// flags and full raw bytes (BODY.PEEK[]), in UID order.
func imapMailbox(t *testing.T, c *imapclient.Client, mailbox string) []imapMessage {
	t.Helper()
	sel, err := c.Select(mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
	if err != nil {
		t.Fatalf("EXAMINE %s: %v", mailbox, err)
	}
	if sel.NumMessages == 0 {
		return nil
	}
	msgs, err := c.Fetch(imap.SeqSet{{Start: 1, Stop: sel.NumMessages}}, &imap.FetchOptions{
		UID: true, Flags: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatalf("FETCH %s: %v", mailbox, err)
	}
	out := make([]imapMessage, 0, len(msgs))
	for _, m := range msgs {
		var body []byte
		for _, b := range m.BodySection {
			body = b.Bytes
		}
		out = append(out, imapMessage{UID: m.UID, Flags: m.Flags, Body: body})
	}
	return out
}

// imapMailboxNames lists every mailbox of the logged-in account.
func imapMailboxNames(t *testing.T, c *imapclient.Client) map[string]bool {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatalf("LIST: %v", err)
	}
	names := map[string]bool{}
	for _, l := range list {
		names[l.Mailbox] = true
	}
	return names
}

// imapSMTPDeliver sends raw to rcpt through roost's MX listener with
// go-smtp's client.
func imapSMTPDeliver(t *testing.T, r *Roost, from, rcpt string, raw []byte) {
	t.Helper()
	c, err := smtp.Dial(r.Addr["smtp"])
	if err != nil {
		t.Fatalf("SMTP dial: %v", err)
	}
	defer c.Close()
	if err := c.Hello("client.example.net"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	if err := c.SendMail(from, []string{rcpt}, bytes.NewReader(raw)); err != nil {
		t.Fatalf("SMTP delivery to %s: %v", rcpt, err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("QUIT: %v", err)
	}
}

// imapTestMessage is a small RFC 5322 message with a unique Message-ID.
func imapTestMessage(subject, body string) []byte {
	id := strings.NewReplacer(" ", "-", "/", "-").Replace(subject)
	return []byte(fmt.Sprintf("From: Sender <sender@example.net>\r\nTo: rcpt@example.org\r\n"+
		"Subject: %s\r\nDate: Wed, 25 Nov 2026 12:00:00 +0000\r\nMessage-ID: <%s@example.net>\r\n\r\n%s\r\n",
		subject, id, body))
}

// imapRun runs an external client with a timeout and returns its combined
// output; a non-zero exit fails the test with that output.
func imapRun(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command("timeout", append([]string{"120", name}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}
