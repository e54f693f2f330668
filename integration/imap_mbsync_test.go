package integration

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// mbsync (isync) keeps a Maildir in step with roost: the first run
// downloads everything, later runs carry flags, deletions and new folders
// both ways.

// imapMbsyncConfig is CLIENTS.md's configuration for one account; tls
// holds the SSLType line and its certificate settings.
func imapMbsyncConfig(addr, user, maildir, tls string) string {
	host, port, _ := net.SplitHostPort(addr)
	return fmt.Sprintf(`IMAPAccount srv
Host %s
Port %s
User %s
Pass "%s"
%s
AuthMechs LOGIN

IMAPStore srv-remote
Account srv

MaildirStore srv-local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel srv
Far :srv-remote:
Near :srv-local:
Patterns *
Create Both
Expunge Both
SyncState *
`, host, port, user, imapPassword, tls, maildir, maildir)
}

// imapMaildirFiles maps each message file of a Maildir folder (cur and
// new) to its content.
func imapMaildirFiles(t *testing.T, folder string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, sub := range []string{"cur", "new"} {
		entries, err := os.ReadDir(filepath.Join(folder, sub))
		if err != nil {
			t.Fatalf("read maildir: %v", err)
		}
		for _, e := range entries {
			p := filepath.Join(folder, sub, e.Name())
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			out[p] = b
		}
	}
	return out
}

// imapMaildirFind returns the file of folder whose content is want, once
// the X-TUID header mbsync inserts to track its copies is taken out (the
// only change isync makes besides line ends).
func imapMaildirFind(files map[string][]byte, want []byte) (string, bool) {
	for p, b := range files {
		if bytes.Equal(imapTUID.ReplaceAll(b, nil), want) {
			return p, true
		}
	}
	return "", false
}

var imapTUID = regexp.MustCompile(`(?m)^X-TUID: [^\n]*\n`)

// imapLF is a message as a Maildir holds it: mbsync stores LF line ends
// (isync converts CRLF on the way in and back on the way out).
func imapLF(raw []byte) []byte { return bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")) }

func TestIMAPMbsync(t *testing.T) {
	mbsync := imapTool(t, "mbsync", "isync")
	r, users := imapStart(t, "mbsync")
	user := users[0]
	obs := imapLoginClient(t, r, user, nil)

	// Server-side content: flags, a message in a second folder, and
	// bytes a careless server would mangle (8bit, a long line, a line
	// that is only a dot, trailing whitespace).
	flagged := imapTestMessage("mbsync flagged", "first body")
	plain := []byte("From: Zoë <zoe@example.net>\r\nTo: mbsync@example.org\r\nSubject: mbsync 8bit\r\n" +
		"Message-ID: <mbsync-8bit@example.net>\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\nGrüße, trailing space \r\n.\r\n" + strings.Repeat("x", 900) + "\r\nend\r\n")
	archived := imapTestMessage("mbsync archived", "in the archive")
	imapAppend(t, obs, "INBOX", flagged, imap.FlagFlagged)
	uidPlain := imapAppend(t, obs, "INBOX", plain)
	imapAppend(t, obs, "Archive", archived, imap.FlagSeen)

	dir := t.TempDir()
	maildir := filepath.Join(dir, "Mail")
	if err := os.Mkdir(maildir, 0o700); err != nil {
		t.Fatal(err)
	}
	rc := filepath.Join(dir, "mbsyncrc")
	if err := os.WriteFile(rc, []byte(imapMbsyncConfig(r.Addr["imap"], user, maildir, "SSLType None")), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"HOME=" + dir}
	sync := func(what string) {
		t.Helper()
		out := imapRun(t, dir, env, mbsync, "-c", rc, "-a")
		t.Logf("mbsync (%s):\n%s", what, out)
	}

	// 1. First sync: every folder and message, byte for byte.
	sync("first")
	for _, mb := range []string{"INBOX", "Sent", "Drafts", "Trash", "Junk", "Archive"} {
		if _, err := os.Stat(filepath.Join(maildir, mb, "cur")); err != nil {
			t.Errorf("folder %s not created locally: %v", mb, err)
		}
	}
	inbox := imapMaildirFiles(t, filepath.Join(maildir, "INBOX"))
	if len(inbox) != 2 {
		t.Fatalf("local INBOX has %d messages, want 2: %v", len(inbox), inbox)
	}
	pf, ok := imapMaildirFind(inbox, imapLF(flagged))
	if !ok {
		t.Fatalf("flagged message not downloaded byte-exact; local INBOX: %q", inbox)
	}
	if !strings.HasSuffix(pf, ",F") {
		t.Errorf("\\Flagged not carried to the maildir file name: %s", pf)
	}
	pp, ok := imapMaildirFind(inbox, imapLF(plain))
	if !ok {
		t.Fatalf("8bit message not downloaded byte-exact; local INBOX: %q", inbox)
	}
	if strings.Contains(filepath.Base(pp), ":2,S") {
		t.Errorf("unseen message downloaded as seen: %s", pp)
	}
	arch := imapMaildirFiles(t, filepath.Join(maildir, "Archive"))
	if pa, ok := imapMaildirFind(arch, imapLF(archived)); !ok || !strings.HasSuffix(pa, ":2,S") {
		t.Fatalf("Archive: want the archived message, seen; got %q", arch)
	}

	// 2. A local flag reaches the server: mark the 8bit message seen
	// (Maildir flags after ":2,", in ASCII order).
	seenName := strings.TrimSuffix(filepath.Join(filepath.Dir(filepath.Dir(pp)), "cur", filepath.Base(pp)), ":2,") + ":2,S"
	if !strings.Contains(pp, ":2,") {
		t.Fatalf("maildir file name without an info part: %s", pp)
	}
	if err := os.Rename(pp, seenName); err != nil {
		t.Fatal(err)
	}
	sync("local flag")
	server := imapMailbox(t, obs, "INBOX")
	if i := slices.IndexFunc(server, func(m imapMessage) bool { return m.UID == uidPlain }); i < 0 || !server[i].has(imap.FlagSeen) {
		t.Errorf("\\Seen set in the Maildir did not reach the server (UID %d): %v", uidPlain, server)
	}

	// 3. A server-side expunge removes the local copy.
	if _, err := obs.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := obs.Store(imap.UIDSetNum(uidPlain), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := obs.UIDExpunge(imap.UIDSetNum(uidPlain)).Close(); err != nil {
		t.Fatal(err)
	}
	if err := obs.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	sync("server expunge")
	inbox = imapMaildirFiles(t, filepath.Join(maildir, "INBOX"))
	if _, ok := imapMaildirFind(inbox, imapLF(plain)); ok || len(inbox) != 1 {
		t.Errorf("message expunged on the server is still local: %q", inbox)
	}

	// 4. A new local folder with a message appears on the server.
	local := filepath.Join(maildir, "Local", "Notes")
	for _, sub := range []string{"cur", "new", "tmp"} {
		if err := os.MkdirAll(filepath.Join(local, sub), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	note := imapTestMessage("mbsync local note", "written offline")
	if err := os.WriteFile(filepath.Join(local, "cur", "1764072000.1_1.laptop:2,S"), imapLF(note), 0o600); err != nil {
		t.Fatal(err)
	}
	sync("local folder")
	names := imapMailboxNames(t, obs)
	if !names["Local/Notes"] {
		t.Fatalf("folder made locally is not on the server: %v", names)
	}
	got := imapMailbox(t, obs, "Local/Notes")
	if len(got) != 1 {
		t.Fatalf("Local/Notes on the server holds %d messages, want 1", len(got))
	}
	if !bytes.Equal(imapTUID.ReplaceAll(got[0].Body, nil), note) || !got[0].has(imap.FlagSeen) {
		t.Fatalf("Local/Notes on the server: flags %v, %q (want the note with CRLF, \\Seen)", got[0].Flags, got[0].Body)
	}

	// 5. A quiet run changes nothing.
	sync("idempotent")
	if n := len(imapMaildirFiles(t, filepath.Join(maildir, "INBOX"))); n != 1 {
		t.Errorf("INBOX changed on a quiet run: %d messages", n)
	}
	if n := len(imapMailbox(t, obs, "INBOX")); n != 1 {
		t.Errorf("server INBOX changed on a quiet run: %d messages", n)
	}

	// 6. A second device syncs over implicit TLS, trusting exactly roost's
	// self-signed certificate, and gets the same state.
	dir2 := t.TempDir()
	maildir2 := filepath.Join(dir2, "Mail")
	if err := os.Mkdir(maildir2, 0o700); err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(r.Dir, "data", "tls", "selfsigned-cert.pem")
	rc2 := filepath.Join(dir2, "mbsyncrc")
	if err := os.WriteFile(rc2, []byte(imapMbsyncConfig(r.Addr["imaps"], user, maildir2, "SSLType IMAPS\nCertificateFile "+cert)), 0o600); err != nil {
		t.Fatal(err)
	}
	out := imapRun(t, dir2, []string{"HOME=" + dir2}, mbsync, "-c", rc2, "-a")
	t.Logf("mbsync (imaps):\n%s", out)
	inbox2 := imapMaildirFiles(t, filepath.Join(maildir2, "INBOX"))
	if _, ok := imapMaildirFind(inbox2, imapLF(flagged)); !ok || len(inbox2) != 1 {
		t.Errorf("INBOX over IMAPS: %q", inbox2)
	}
	if notes := imapMaildirFiles(t, filepath.Join(maildir2, "Local", "Notes")); len(notes) != 1 {
		t.Errorf("Local/Notes over IMAPS: %d messages", len(notes))
	}
}
