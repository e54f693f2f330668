package mailstore

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestUIDSetNormalize(t *testing.T) {
	s := UIDSet{{9, MaxUID}, {5, 3}, {1, 1}, {2, 2}, {7, 7}, {6, 6}}.Normalize()
	want := UIDSet{{1, 7}, {9, MaxUID}}
	if !slices.Equal(s, want) {
		t.Fatalf("Normalize = %v, want %v", s, want)
	}
	if got := s.String(); got != "1:7,9:*" {
		t.Fatalf("String = %q", got)
	}
	if !s.Contains(4) || s.Contains(8) || !s.Contains(MaxUID-1) {
		t.Fatalf("Contains wrong on %v", s)
	}
	if got := CompactUIDs([]UID{1, 2, 3, 5, 7, 8}).String(); got != "1:3,5,7:8" {
		t.Fatalf("CompactUIDs = %q", got)
	}
	if UIDSet(nil).Normalize() != nil {
		t.Fatal("empty set must normalize to nil")
	}
}

func TestNormalizeMailboxName(t *testing.T) {
	for in, want := range map[string]string{
		"inbox":       "INBOX",
		"InBoX/Sub":   "INBOX/Sub",
		"Inboxes":     "Inboxes",
		"Work/2026":   "Work/2026",
		"Entwürfe":    "Entwürfe",
		"inbox/inbox": "INBOX/inbox",
	} {
		got, err := NormalizeMailboxName(in)
		if err != nil || got != want {
			t.Errorf("NormalizeMailboxName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "a\x01b", "\xff", strings.Repeat("x", 1001)} {
		if _, err := NormalizeMailboxName(bad); err == nil {
			t.Errorf("NormalizeMailboxName(%q) accepted", bad)
		}
	}
}

func TestMatchPattern(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"*", "Work/2026/Q1", true},
		{"%", "Work", true},
		{"%", "Work/2026", false},
		{"Work/%", "Work/2026", true},
		{"Work/%", "Work/2026/Q1", false},
		{"Work/*", "Work/2026/Q1", true},
		{"inbox", "INBOX", true},
		{"inBox/%", "INBOX/Sub", true},
		{"W*k", "Work", true},
		{"W%k", "Wo/rk", false},
		{"Sent", "sent", false}, // only INBOX is case-insensitive
		// RFC 9051 section 5.1: INBOX is case-insensitive, also when a
		// wildcard follows or cuts into it.
		{"Inbox*", "INBOX", true},
		{"inbox%", "INBOX", true},
		{"inb*", "INBOX", true},
		{"iNb%", "INBOX", true},
		{"*box", "INBOX", true},
		{"inbox*", "INBOX/Sub", true},
		{"inbox/*", "INBOX/Sub", true},
		{"inbox%", "INBOX/Sub", false},
		{"inbox/sub", "INBOX/Sub", false}, // below INBOX, case counts
		{"*sub", "INBOX/Sub", false},
		{"inbox*", "INBOXES", false}, // not INBOX: case-sensitive
		{"inbox*", "Inboxes", false},
		{"Inbox*", "Inboxes", true},
		{"inb", "INBOX", false},
		{"inboxx", "INBOX", false},
	}
	for _, c := range cases {
		if got := MatchPattern(c.pattern, c.name); got != c.want {
			t.Errorf("MatchPattern(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

func TestFlags(t *testing.T) {
	got := NormalizeFlags([]string{`\seen`, "$Junk", `\SEEN`, `\Recent`, "$junk", `\Flagged`})
	want := []string{"$Junk", `\Flagged`, `\Seen`}
	if !slices.Equal(got, want) {
		t.Fatalf("NormalizeFlags = %v, want %v", got, want)
	}
	cur := []string{`\Seen`, "work"}
	if got := ApplyFlags(cur, FlagsAdd, []string{`\deleted`}); !slices.Equal(got, []string{`\Deleted`, `\Seen`, "work"}) {
		t.Fatalf("add: %v", got)
	}
	if got := ApplyFlags(cur, FlagsRemove, []string{"WORK"}); !slices.Equal(got, []string{`\Seen`}) {
		t.Fatalf("remove: %v", got)
	}
	if got := ApplyFlags(cur, FlagsReplace, nil); len(got) != 0 {
		t.Fatalf("replace: %v", got)
	}
}

func TestLineSize(t *testing.T) {
	for raw, want := range map[string]int64{
		"":                0,
		"a\r\nb\r\n":      6,
		"a\nb\n":          6,
		"a\r\nb":          6,
		"\n":              2,
		"a\rb":            5, // a bare CR is no line end; the last line gains CRLF
		"x\r\n\r\nbody\n": 11,
	} {
		if got := LineSize([]byte(raw)); got != want {
			t.Errorf("LineSize(%q) = %d, want %d", raw, got, want)
		}
	}
}

func TestPrepareIDs(t *testing.T) {
	a := Prepare([]byte("Message-ID: <a@x>\r\nSubject: a\r\n\r\nhi\r\n"))
	b := Prepare([]byte("Message-ID: <b@x>\r\nReferences: <a@x>\r\nSubject: Re: a\r\n\r\nhi\r\n"))
	if a.ThreadID != b.ThreadID {
		t.Fatalf("a reply must share its thread: %s vs %s", a.ThreadID, b.ThreadID)
	}
	if a.EmailID == b.EmailID || len(a.BlobID) != 64 {
		t.Fatalf("ids: %+v %+v", a, b)
	}
}

func TestHub(t *testing.T) {
	h := NewHub()
	w1, w2, other := h.Watch(1), h.Watch(1), h.Watch(2)
	defer other.Close()
	h.Notify(1, 5)
	h.Notify(1, 6) // coalesced with the first
	for _, w := range []*Watcher{w1, w2} {
		select {
		case <-w.C:
		case <-time.After(time.Second):
			t.Fatal("watcher not woken")
		}
		select {
		case <-w.C:
			t.Fatal("wake-ups not coalesced")
		default:
		}
	}
	select {
	case <-other.C:
		t.Fatal("another account's watcher woken")
	default:
	}
	w1.Close()
	w1.Close() // twice is fine
	h.NotifyAll()
	select {
	case <-w2.C:
	default:
		t.Fatal("NotifyAll missed a watcher")
	}
	select {
	case <-w1.C:
		t.Fatal("closed watcher woken")
	default:
	}
}

// FuzzMailboxName checks the name rules against LIST matching: a valid
// name is stable under normalisation and matches "*" and itself.
func FuzzMailboxName(f *testing.F) {
	for _, s := range []string{"INBOX", "inbox/Sub", "Work/2026", "Entwürfe", "a//b", "%", "*/x", "&AOQ-"} {
		f.Add(s, "*")
	}
	f.Add("INBOX/x", "inb*")
	f.Add("Inboxes", "inbox%")
	f.Fuzz(func(t *testing.T, name, pattern string) {
		n, err := NormalizeMailboxName(name)
		if err != nil {
			return
		}
		if again, err := NormalizeMailboxName(n); err != nil || again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", name, n, again, err)
		}
		if !MatchPattern("*", n) {
			t.Fatalf("* does not match %q", n)
		}
		if !strings.ContainsAny(n, "*%") && !MatchPattern(n, n) {
			t.Fatalf("%q does not match itself", n)
		}
		// RFC 9051 section 5.1: INBOX matches in any case, a wildcard
		// may cut into it, and it matches however the pattern spells it.
		if n == InboxName || strings.HasPrefix(n, InboxName+Separator) {
			if !MatchPattern("inb*", n) || !MatchPattern("Inbox*", n) {
				t.Fatalf("inb* or Inbox* does not match %q", n)
			}
			if !strings.ContainsAny(n, "*%") && !MatchPattern("inBox"+n[len(InboxName):], n) {
				t.Fatalf("%q spelt inBox does not match itself", n)
			}
		}
		_ = MatchPattern(pattern, n) // must not panic or hang
	})
}

// TestWatcherLatest: a watcher keeps the highest modseq its wake-ups
// named, and a wake-up naming none makes it unknown for good.
func TestWatcherLatest(t *testing.T) {
	h := NewHub()
	w := h.Watch(7)
	defer w.Close()
	if m, known := w.Latest(); m != 0 || !known {
		t.Fatalf("fresh watcher: Latest = %d, %v; want 0, true", m, known)
	}
	h.Notify(7, 5)
	h.Notify(7, 3)
	h.Notify(8, 9) // another account
	<-w.C
	if m, known := w.Latest(); m != 5 || !known {
		t.Fatalf("after 5, 3: Latest = %d, %v; want 5, true", m, known)
	}
	h.NotifyAll()
	<-w.C
	if _, known := w.Latest(); known {
		t.Fatal("after NotifyAll: Latest still known")
	}
	w2 := h.Watch(7)
	defer w2.Close()
	h.Notify(7, 0)
	<-w2.C
	if _, known := w2.Latest(); known {
		t.Fatal("after a wake-up without modseq: Latest still known")
	}
}

// Full decides the SMTP server's per-recipient "mailbox full" refusal at
// RCPT, so it must agree with the stores, which accept usage up to and
// including the quota: a mailbox one message or byte short of its quota
// still takes mail, and 0 means unlimited.
func TestAccountFull(t *testing.T) {
	cases := []struct {
		a    Account
		want bool
	}{
		{Account{}, false},
		{Account{UsedBytes: 1 << 40, UsedMessages: 1 << 30}, false},
		{Account{QuotaBytes: 100, UsedBytes: 99}, false},
		{Account{QuotaBytes: 100, UsedBytes: 100}, true},
		{Account{QuotaBytes: 100, UsedBytes: 150}, true},
		{Account{QuotaMessages: 2, UsedMessages: 1}, false},
		{Account{QuotaMessages: 2, UsedMessages: 2}, true},
		{Account{QuotaBytes: 100, UsedBytes: 10, QuotaMessages: 1, UsedMessages: 1}, true},
	}
	for _, c := range cases {
		if got := c.a.Full(); got != c.want {
			t.Errorf("%+v.Full() = %v, want %v", c.a, got, c.want)
		}
	}
}
