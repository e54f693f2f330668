package integration

import (
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestIMAPPythonImaplib runs testdata/imaplib_client.py (imaplib and
// smtplib against the real binary), then checks from go-imap that what
// the script left behind is what the server holds.
func TestIMAPPythonImaplib(t *testing.T) {
	python := imapTool(t, "python3", "python3")
	r, users := imapStart(t, "py")
	user := users[0]
	host, imapPort, _ := net.SplitHostPort(r.Addr["imap"])
	_, smtpPort, _ := net.SplitHostPort(r.Addr["smtp"])
	_, imapsPort, _ := net.SplitHostPort(r.Addr["imaps"])
	// With no cert_file configured roost makes a self-signed certificate
	// in data_dir (internal/tlsutil); the script trusts exactly that one.
	ca := filepath.Join(r.Dir, "data", "tls", "selfsigned-cert.pem")
	script, err := filepath.Abs(filepath.Join("testdata", "imaplib_client.py"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("timeout", "180", python, script, host, imapPort, smtpPort, user, imapPassword, imapsPort, ca)
	out, err := cmd.CombinedOutput()
	t.Logf("imaplib_client.py:\n%s", out)
	if err != nil || !strings.Contains(string(out), "ALL OK") {
		t.Fatalf("imaplib_client.py failed (%v); server log:\n%s", err, r.Stderr())
	}

	// The script's end state, seen by an independent client: Archive got
	// the COPY and the MOVE, Trash the UID MOVE, INBOX the SMTP delivery and
	// the second session's APPEND; the folders it deleted are gone.
	c := imapLoginClient(t, r, user, nil)
	names := imapMailboxNames(t, c)
	for _, gone := range []string{"Projects", "Work", "Work/2026", "Entwürfe"} {
		if names[gone] {
			t.Errorf("mailbox %q still listed after the script deleted it", gone)
		}
	}
	counts := map[string]int{"INBOX": 3, "Archive": 2, "Trash": 1}
	for mb, want := range counts {
		if got := imapMailbox(t, c, mb); len(got) != want {
			t.Errorf("%s holds %d messages, want %d: %v", mb, len(got), want, got)
		}
	}
	inbox := imapMailbox(t, c, "INBOX")
	if len(inbox) == 3 && !strings.Contains(string(inbox[1].Body), "Message-ID: <smtp.4@example.net>") {
		t.Errorf("INBOX message 2 is not the SMTP delivery:\n%s", inbox[1].Body)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatal(err)
	}
}
