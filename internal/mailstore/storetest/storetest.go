// Package storetest is the conformance suite every mailstore.Store backend
// must pass. It owns the executable meaning of the Store interface's doc
// comments: UID and modseq rules, exact tombstones, the change feed, quota
// atomicity, byte-exact blobs, retention, the queue and leases, wake-ups and
// crash consistency. It knows nothing of any database: a backend's test file
// hands it a Backend (how to make a fresh store location and open it) and
// calls Run; TestMain calls MaybeChild first so the crash test can re-execute
// the test binary as a child that is killed mid-delivery.
package storetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Backend describes a store implementation to the suite.
type Backend struct {
	Name string
	// Fresh returns a key for a new, empty store location (a temp dir for
	// SQLite, a fresh schema/database for PostgreSQL).
	Fresh func(t testing.TB) string
	// Open opens the store at key; called again after Close to test
	// restarts, and from a child process in the crash test.
	Open func(key string) (mailstore.Store, error)
}

// Run runs the whole suite as subtests of t. Each leaf test works on its own
// fresh store, so they run in parallel.
func Run(t *testing.T, b Backend) {
	if b.Fresh == nil || b.Open == nil {
		t.Fatal("storetest: Backend needs Fresh and Open")
	}
	groups := []struct {
		name string
		fn   func(*testing.T, Backend)
	}{
		{"Directory", testDirectory},
		{"Mailboxes", testMailboxes},
		{"UIDs", testUIDs},
		{"AppendByName", testAppendByName},
		{"ModSeq", testModSeq},
		{"Changes", testChanges},
		{"Messages", testMessages},
		{"Status", testStatus},
		{"Keywords", testKeywords},
		{"SelectMailbox", testSelectMailbox},
		{"Quota", testQuota},
		{"Search", testSearch},
		{"Retention", testRetention},
		{"POP", testPOP},
		{"Queue", testQueue},
		{"Leases", testLeases},
		{"Watch", testWatch},
		{"Concurrency", testConcurrency},
		{"Crash", testCrash},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.fn(t, b)
		})
	}
}

// fixture is one open store plus helpers that fail the test on error, so
// test bodies read as the behaviour they pin.
type fixture struct {
	t   testing.TB
	b   Backend
	key string
	ctx context.Context

	mu sync.Mutex // guards st across reopen
	st mailstore.Store
}

func newFixture(t testing.TB, b Backend) *fixture {
	t.Helper()
	key := b.Fresh(t)
	st, err := b.Open(key)
	if err != nil {
		t.Fatalf("open %s store: %v", b.Name, err)
	}
	f := &fixture{t: t, b: b, key: key, ctx: context.Background(), st: st}
	t.Cleanup(func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.st != nil {
			if err := f.st.Close(); err != nil {
				t.Errorf("close store: %v", err)
			}
			f.st = nil
		}
	})
	return f
}

// S is the current store.
func (f *fixture) S() mailstore.Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

// reopen closes the store and opens it again at the same key: a restart.
func (f *fixture) reopen() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.st.Close(); err != nil {
		f.t.Fatalf("close before reopen: %v", err)
	}
	f.st = nil
	st, err := f.b.Open(f.key)
	if err != nil {
		f.t.Fatalf("reopen %s store: %v", f.b.Name, err)
	}
	f.st = st
}

// account makes name's domain (if missing) and the account.
func (f *fixture) account(name string) mailstore.Account {
	f.t.Helper()
	_, domain, _ := strings.Cut(name, "@")
	if err := f.S().AddDomain(f.ctx, domain); err != nil && !errors.Is(err, mailstore.ErrExists) {
		f.t.Fatalf("AddDomain(%q): %v", domain, err)
	}
	a, err := f.S().AddAccount(f.ctx, name, "x")
	if err != nil {
		f.t.Fatalf("AddAccount(%q): %v", name, err)
	}
	return a
}

func (f *fixture) mailbox(acct int64, name string) mailstore.Mailbox {
	f.t.Helper()
	mb, err := f.S().GetMailbox(f.ctx, acct, name)
	if err != nil {
		f.t.Fatalf("GetMailbox(%q): %v", name, err)
	}
	return mb
}

func (f *fixture) create(acct int64, name string) mailstore.Mailbox {
	f.t.Helper()
	mb, err := f.S().CreateMailbox(f.ctx, acct, name, "")
	if err != nil {
		f.t.Fatalf("CreateMailbox(%q): %v", name, err)
	}
	return mb
}

func (f *fixture) appendMsg(acct, mbox int64, raw []byte, flags ...string) mailstore.AppendResult {
	f.t.Helper()
	res, err := f.S().Append(f.ctx, acct, []mailstore.AppendRequest{{MailboxID: mbox, Raw: raw, Flags: flags}})
	if err != nil {
		f.t.Fatalf("Append: %v", err)
	}
	if len(res) != 1 {
		f.t.Fatalf("Append of one message returned %d results", len(res))
	}
	return res[0]
}

// appendN appends n distinct messages tagged tag and returns their UIDs.
func (f *fixture) appendN(acct, mbox int64, tag string, n int) []mailstore.UID {
	f.t.Helper()
	var uids []mailstore.UID
	for i := range n {
		uids = append(uids, f.appendMsg(acct, mbox, simpleMsg(fmt.Sprintf("%s-%d", tag, i))).UID)
	}
	return uids
}

func (f *fixture) uids(acct, mbox int64) []mailstore.UID {
	f.t.Helper()
	u, _, err := f.S().UIDs(f.ctx, acct, mbox)
	if err != nil {
		f.t.Fatalf("UIDs: %v", err)
	}
	return u
}

func (f *fixture) status(acct, mbox int64) mailstore.MailboxStatus {
	f.t.Helper()
	s, err := f.S().Status(f.ctx, acct, mbox)
	if err != nil {
		f.t.Fatalf("Status: %v", err)
	}
	return s
}

func (f *fixture) modseq(acct int64) mailstore.ModSeq {
	f.t.Helper()
	m, err := f.S().HighestModSeq(f.ctx, acct)
	if err != nil {
		f.t.Fatalf("HighestModSeq: %v", err)
	}
	return m
}

// fetch returns copies of the fetched messages (a backend may reuse the
// *Message it passes to fn).
func (f *fixture) fetch(acct, mbox int64, uids mailstore.UIDSet, fields mailstore.FetchFields) []mailstore.Message {
	f.t.Helper()
	var out []mailstore.Message
	err := f.S().Fetch(f.ctx, acct, mbox, uids, fields, 0, func(m *mailstore.Message) error {
		c := *m
		c.Flags = slices.Clone(m.Flags)
		out = append(out, c)
		return nil
	})
	if err != nil {
		f.t.Fatalf("Fetch(%s): %v", uids, err)
	}
	return out
}

func (f *fixture) fetchOne(acct, mbox int64, uid mailstore.UID, fields mailstore.FetchFields) mailstore.Message {
	f.t.Helper()
	ms := f.fetch(acct, mbox, mailstore.UIDSetOf(uid), fields)
	if len(ms) != 1 || ms[0].UID != uid {
		f.t.Fatalf("Fetch UID %d: got %d messages", uid, len(ms))
	}
	return ms[0]
}

func (f *fixture) expunge(acct, mbox int64, uids ...mailstore.UID) mailstore.ModSeq {
	f.t.Helper()
	gone, ms, err := f.S().Expunge(f.ctx, acct, mbox, mailstore.UIDSetOf(uids...))
	if err != nil {
		f.t.Fatalf("Expunge: %v", err)
	}
	if !slices.Equal(gone, sortedUIDs(uids)) {
		f.t.Fatalf("Expunge(%v) removed %v", uids, gone)
	}
	return ms
}

func (f *fixture) storeFlags(acct, mbox int64, mode mailstore.StoreFlagsMode, flags []string, uids ...mailstore.UID) mailstore.StoreFlagsResult {
	f.t.Helper()
	r, err := f.S().StoreFlags(f.ctx, acct, mailstore.StoreFlagsRequest{MailboxID: mbox, UIDs: mailstore.UIDSetOf(uids...), Mode: mode, Flags: flags})
	if err != nil {
		f.t.Fatalf("StoreFlags: %v", err)
	}
	return r
}

func (f *fixture) search(acct, mbox int64, key *mailstore.SearchKey) []mailstore.UID {
	f.t.Helper()
	u, err := f.S().Search(f.ctx, acct, mbox, key)
	if err != nil {
		f.t.Fatalf("Search: %v", err)
	}
	return u
}

// allMailboxes maps name to mailbox.
func (f *fixture) allMailboxes(acct int64) map[string]mailstore.Mailbox {
	f.t.Helper()
	list, err := f.S().ListMailboxes(f.ctx, acct)
	if err != nil {
		f.t.Fatalf("ListMailboxes: %v", err)
	}
	m := make(map[string]mailstore.Mailbox, len(list))
	for _, mb := range list {
		if _, dup := m[mb.Name]; dup {
			f.t.Fatalf("ListMailboxes lists %q twice", mb.Name)
		}
		m[mb.Name] = mb
	}
	return m
}

// expectErr fails unless err wraps want.
func expectErr(t testing.TB, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: got error %v, want %v", what, err, want)
	}
}

func blobID(raw []byte) string {
	s := sha256.Sum256(raw)
	return hex.EncodeToString(s[:])
}

func sortedUIDs(u []mailstore.UID) []mailstore.UID {
	c := slices.Clone(u)
	slices.Sort(c)
	return c
}

// msgSpec builds an RFC 5322 message with CRLF line ends.
type msgSpec struct {
	From, To, Subject, MessageID string
	Date                         time.Time
	Extra                        []string // further header lines
	Body                         string
}

func (s msgSpec) bytes() []byte {
	var b strings.Builder
	if s.From == "" {
		s.From = "Sender <sender@example.org>"
	}
	if s.To == "" {
		s.To = "rcpt@example.test"
	}
	if s.Date.IsZero() {
		s.Date = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	}
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\n", s.From, s.To)
	if s.Subject != "" {
		fmt.Fprintf(&b, "Subject: %s\r\n", s.Subject)
	}
	if s.MessageID != "" {
		fmt.Fprintf(&b, "Message-ID: <%s>\r\n", s.MessageID)
	}
	fmt.Fprintf(&b, "Date: %s\r\n", s.Date.Format("Mon, 02 Jan 2006 15:04:05 -0700"))
	for _, h := range s.Extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	body := s.Body
	if body == "" {
		body = "Hello.\r\n"
	}
	b.WriteString(body)
	return []byte(b.String())
}

// simpleMsg is a distinct small message identified by tag.
func simpleMsg(tag string) []byte {
	return msgSpec{Subject: "msg " + tag, MessageID: tag + "@storetest.invalid", Body: "Body of " + tag + ".\r\n"}.bytes()
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
