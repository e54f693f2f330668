package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/app"
	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
)

// stored is a message as the store holds it.
type stored struct {
	raw   string
	flags []string
	date  time.Time
}

// mailboxContents reads a mailbox straight from the store, in UID order.
func mailboxContents(t *testing.T, c cli, acctName, box string) []stored {
	t.Helper()
	ctx, _, st := openStore(t, c)
	defer st.Close()
	acct, err := st.GetAccount(ctx, acctName)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := st.GetMailbox(ctx, acct.ID, box)
	if err != nil {
		t.Fatalf("mailbox %s: %v", box, err)
	}
	uids, _, err := st.UIDs(ctx, acct.ID, mb.ID)
	if err != nil || len(uids) == 0 {
		return nil
	}
	var out []stored
	var blobs []string
	err = st.Fetch(ctx, acct.ID, mb.ID, mailstore.CompactUIDs(uids), mailstore.FetchInternalDate|mailstore.FetchIDs, 0, func(m *mailstore.Message) error {
		out = append(out, stored{flags: m.Flags, date: m.InternalDate})
		blobs = append(blobs, m.BlobID)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		raw, err := st.ReadBlob(ctx, blobs[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i].raw = string(raw)
	}
	return out
}

func newMailCLI(t *testing.T) cli {
	c, _ := newCLI(t)
	c.ok("", "domain", "add", "example.test")
	c.ok("pw\n", "user", "add", "bob@example.test", "--password-stdin")
	return c
}

const threeMbox = "From alice@example.test Mon Jan  1 10:00:00 2024\n" +
	"From: alice@example.test\nSubject: one\n\nFirst.\n>From the archive\n\n" +
	"From carol@example.test Tue Jan  2 11:30:00 2024\n" +
	"From: carol@example.test\nSubject: two\n\nSecond.\nFrom here, not a separator\n\n" +
	"From dave@example.test Wed Jan  3 12:45:30 2024\n" +
	"From: dave@example.test\nSubject: three\n\nno newline at the end"

func TestImportMbox(t *testing.T) {
	c := newMailCLI(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "old.mbox")
	os.WriteFile(p, []byte(threeMbox), 0o600)
	if out := c.ok("", "import", "bob@example.test", "Old/2024", p); out != "imported 3 messages into Old/2024\n" {
		t.Fatalf("import said %q", out)
	}
	got := mailboxContents(t, c, "bob@example.test", "Old/2024")
	want := []stored{
		{raw: "From: alice@example.test\r\nSubject: one\r\n\r\nFirst.\r\nFrom the archive\r\n", date: time.Date(2024, 1, 1, 10, 0, 0, 0, time.UTC)},
		{raw: "From: carol@example.test\r\nSubject: two\r\n\r\nSecond.\r\nFrom here, not a separator\r\n", date: time.Date(2024, 1, 2, 11, 30, 0, 0, time.UTC)},
		{raw: "From: dave@example.test\r\nSubject: three\r\n\r\nno newline at the end\r\n", date: time.Date(2024, 1, 3, 12, 45, 30, 0, time.UTC)},
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages stored, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].raw != want[i].raw || !got[i].date.Equal(want[i].date) || len(got[i].flags) != 0 {
			t.Errorf("message %d: %q %v %q\nwant %q %v", i, got[i].raw, got[i].date, got[i].flags, want[i].raw, want[i].date)
		}
	}
	// Into an existing mailbox, by an alias and a case-insensitive INBOX.
	if out := c.ok("", "import", "bob@example.test", "inbox", p); out != "imported 3 messages into INBOX\n" {
		t.Fatalf("import said %q", out)
	}

	os.WriteFile(filepath.Join(dir, "notmbox"), []byte("Subject: x\n\nhi\n"), 0o600)
	c.fails(1, `stopped after 0 messages imported`, "import", "bob@example.test", "INBOX", filepath.Join(dir, "notmbox"))
	c.fails(1, "not an mbox file", "import", "bob@example.test", "INBOX", filepath.Join(dir, "notmbox"))
	c.fails(1, "no such file", "import", "bob@example.test", "INBOX", filepath.Join(dir, "missing"))
	c.fails(1, "no account nobody@example.test", "import", "nobody@example.test", "INBOX", p)
	c.fails(1, "not a maildir", "import", "bob@example.test", "INBOX", dir)
	c.fails(2, "wrong number of arguments", "import", "bob@example.test", "INBOX")
}

func TestImportLimits(t *testing.T) {
	c := newMailCLI(t)
	dir := t.TempDir()
	p := filepath.Join(dir, "old.mbox")
	os.WriteFile(p, []byte(threeMbox), 0o600)

	cfg, _ := config.Load(c.cfgPath)
	ctx := context.Background()
	st, err := app.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.SetQuota(ctx, "bob@example.test", 0, 2); err != nil {
		t.Fatal(err)
	}
	st.Close()
	c.fails(1, "import into Archive stopped after 2 messages imported: the account's quota is full", "import", "bob@example.test", "Archive", p)
	if n := len(mailboxContents(t, c, "bob@example.test", "Archive")); n != 2 {
		t.Fatalf("%d messages stored over quota, want the 2 that fit", n)
	}

	// A message over the size limit stops the import at that message.
	c2 := newMailCLI(t)
	cfgText, _ := os.ReadFile(c2.cfgPath)
	os.WriteFile(c2.cfgPath, append(cfgText, "[limits]\nmax_message_bytes = 1024\n"...), 0o600)
	big := threeMbox[:strings.Index(threeMbox, "From dave")] + "From dave@example.test Wed Jan  3 12:45:30 2024\nSubject: big\n\n" + strings.Repeat("x", 2000) + "\n"
	os.WriteFile(p, []byte(big), 0o600)
	c2.fails(1, "stopped after 2 messages imported: message 3 (line 15) is 2018 bytes, over limits.max_message_bytes (1024)", "import", "bob@example.test", "INBOX", p)
}

// writeMaildir makes a Maildir from name -> content under dir.
func writeMaildir(t *testing.T, dir string, files map[string]string, mtimes map[string]time.Time) {
	t.Helper()
	for _, sub := range []string{"cur", "new", "tmp", ".Sub.Folder/cur"} {
		os.MkdirAll(filepath.Join(dir, sub), 0o700)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, mtimes[name], mtimes[name])
	}
}

func TestImportMaildir(t *testing.T) {
	c := newMailCLI(t)
	md := filepath.Join(t.TempDir(), "Maildir")
	t0 := time.Date(2023, 5, 1, 8, 0, 0, 0, time.UTC)
	writeMaildir(t, md, map[string]string{
		"cur/1682928000.M1P1.host:2,FS":      "Subject: flagged seen\n\nA\n",
		"cur/1682928001.M2P1.host:2,DRT":     "Subject: draft answered deleted\r\n\r\nB\r\n",
		"cur/1682928002.M3P1.host:2,":        "Subject: no flags\n\nC\n",
		"new/1682928003.M4P1.host":           "Subject: new\n\nD\n",
		"new/1682928004.M5P1.host:2,S":       "Subject: new, seen in name\n\nE\n",
		"tmp/1682928005.M6P1.host":           "Subject: half delivered\n\nF\n",
		".Sub.Folder/cur/1682928006.M7.host": "Subject: subfolder\n\nG\n",
	}, map[string]time.Time{
		"cur/1682928000.M1P1.host:2,FS":  t0,
		"cur/1682928001.M2P1.host:2,DRT": t0.Add(time.Minute),
		"cur/1682928002.M3P1.host:2,":    t0.Add(2 * time.Minute),
		"new/1682928003.M4P1.host":       t0.Add(3 * time.Minute),
		"new/1682928004.M5P1.host:2,S":   t0.Add(4 * time.Minute),
	})
	if out := c.ok("", "import", "bob@example.test", "Imported", md); out != "imported 5 messages into Imported\n" {
		t.Fatalf("import said %q", out)
	}
	got := mailboxContents(t, c, "bob@example.test", "Imported")
	want := []stored{
		{raw: "Subject: flagged seen\r\n\r\nA\r\n", flags: []string{`\Flagged`, `\Seen`}},
		{raw: "Subject: draft answered deleted\r\n\r\nB\r\n", flags: []string{`\Answered`, `\Deleted`, `\Draft`}},
		{raw: "Subject: no flags\r\n\r\nC\r\n"},
		{raw: "Subject: new\r\n\r\nD\r\n"},
		{raw: "Subject: new, seen in name\r\n\r\nE\r\n"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d messages stored, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i].raw != want[i].raw || !slices.Equal(mailstore.NormalizeFlags(got[i].flags), want[i].flags) || !got[i].date.Equal(t0.Add(time.Duration(i)*time.Minute)) {
			t.Errorf("message %d: %q %q %v\nwant %q %q", i, got[i].raw, got[i].flags, got[i].date, want[i].raw, want[i].flags)
		}
	}
}

func TestExportRoundTrip(t *testing.T) {
	c := newMailCLI(t)
	dir := t.TempDir()
	md := filepath.Join(dir, "src")
	t0 := time.Date(2023, 5, 1, 8, 0, 0, 0, time.UTC)
	writeMaildir(t, md, map[string]string{
		"cur/1.a.host:2,FS": "From: alice@example.test\nSubject: a\n\nFrom the start\n>From quoted\n\n",
		"cur/2.b.host:2,DR": "Subject: b\n\nno final newline",
		"cur/3.c.host:2,T":  "Subject: c\n\nc\n",
		"new/4.d.host":      "Subject: d\n\nd\n",
	}, map[string]time.Time{
		"cur/1.a.host:2,FS": t0, "cur/2.b.host:2,DR": t0.Add(time.Hour), "cur/3.c.host:2,T": t0.Add(2 * time.Hour), "new/4.d.host": t0.Add(3 * time.Hour),
	})
	c.ok("", "import", "bob@example.test", "Src", md)
	orig := mailboxContents(t, c, "bob@example.test", "Src")

	// Maildir: bytes, flags and dates survive export and import.
	out := filepath.Join(dir, "out") + "/"
	if got := c.ok("", "export", "bob@example.test", "Src", out); got != "exported 4 messages from Src to "+out+"\n" {
		t.Fatalf("export said %q", got)
	}
	if ents, _ := os.ReadDir(filepath.Join(out, "cur")); len(ents) != 4 {
		t.Fatalf("%d files in cur/", len(ents))
	}
	if b, _ := os.ReadFile(filepath.Join(out, "cur", mustGlob(t, filepath.Join(out, "cur", "*:2,FS")))); string(b) != "From: alice@example.test\nSubject: a\n\nFrom the start\n>From quoted\n\n" {
		t.Fatalf("exported file holds %q, with LF lines expected", b)
	}
	c.ok("", "import", "bob@example.test", "FromMaildir", out)
	back := mailboxContents(t, c, "bob@example.test", "FromMaildir")
	if len(back) != len(orig) {
		t.Fatalf("%d messages back, want %d", len(back), len(orig))
	}
	for i := range orig {
		if back[i].raw != orig[i].raw || !slices.Equal(back[i].flags, orig[i].flags) || !back[i].date.Equal(orig[i].date) {
			t.Errorf("message %d: %q %q %v\nwant %q %q %v", i, back[i].raw, back[i].flags, back[i].date, orig[i].raw, orig[i].flags, orig[i].date)
		}
	}
	// A second export into the same Maildir adds, never overwrites.
	c.ok("", "export", "bob@example.test", "Src", filepath.Join(dir, "out"))
	if ents, _ := os.ReadDir(filepath.Join(out, "cur")); len(ents) != 8 {
		t.Fatalf("%d files in cur/ after a second export", len(ents))
	}

	// mbox: bytes and dates survive (mbox has no flags).
	mbox := filepath.Join(dir, "src.mbox")
	c.ok("", "export", "bob@example.test", "Src", mbox)
	text, _ := os.ReadFile(mbox)
	if !strings.HasPrefix(string(text), "From alice@example.test Mon May  1 08:00:00 2023\nFrom: alice@example.test\nSubject: a\n\n>From the start\n>>From quoted\n\n\nFrom MAILER-DAEMON Mon May  1 09:00:00 2023\n") {
		t.Fatalf("mbox starts %q", text)
	}
	c.ok("", "import", "bob@example.test", "FromMbox", mbox)
	back = mailboxContents(t, c, "bob@example.test", "FromMbox")
	if len(back) != len(orig) {
		t.Fatalf("%d messages back from mbox, want %d", len(back), len(orig))
	}
	for i := range orig {
		want := orig[i].raw
		if !strings.HasSuffix(want, "\n") { // mbox messages end with a line end
			want += "\r\n"
		}
		if back[i].raw != want || !back[i].date.Equal(orig[i].date) {
			t.Errorf("message %d: %q %v\nwant %q %v", i, back[i].raw, back[i].date, want, orig[i].date)
		}
	}
	c.fails(1, "src.mbox exists; export writes a new file and does not overwrite one", "export", "bob@example.test", "Src", mbox)
	if b, _ := os.ReadFile(mbox); string(b) != string(text) {
		t.Fatal("the refused export changed the file")
	}
	c.fails(1, "no such mailbox", "export", "bob@example.test", "Nope", filepath.Join(dir, "nope.mbox"))
	if _, err := os.Stat(filepath.Join(dir, "nope.mbox")); err == nil {
		t.Fatal("a failed export left a file")
	}
}

func mustGlob(t *testing.T, pattern string) string {
	t.Helper()
	m, _ := filepath.Glob(pattern)
	if len(m) != 1 {
		t.Fatalf("%s matches %q", pattern, m)
	}
	return filepath.Base(m[0])
}
