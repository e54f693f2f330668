package delivery

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/storage/sqlite"
)

func testStore(t *testing.T) (mailstore.Store, mailstore.Account, mailstore.Account) {
	t.Helper()
	st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	ctx := context.Background()
	if err := st.AddDomain(ctx, "x.test"); err != nil {
		t.Fatal(err)
	}
	a, err := st.AddAccount(ctx, "a@x.test", "x")
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.AddAccount(ctx, "b@x.test", "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := st.AddAlias(ctx, "alias@x.test", "a@x.test"); err != nil {
		t.Fatal(err)
	}
	return st, a, b
}

func count(t *testing.T, st mailstore.Store, acct mailstore.Account, special string) int {
	t.Helper()
	ctx := context.Background()
	var mb mailstore.Mailbox
	var err error
	if special == "" {
		mb, err = st.GetMailbox(ctx, acct.ID, mailstore.InboxName)
	} else {
		mb, err = st.MailboxBySpecialUse(ctx, acct.ID, special)
	}
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.Status(ctx, acct.ID, mb.ID)
	if err != nil {
		t.Fatal(err)
	}
	return int(s.Messages)
}

const raw = "From: z@remote.test\r\nSubject: t\r\nMessage-ID: <t1@remote.test>\r\n\r\nbody\r\n"

func TestDeliverDedupAndAtomic(t *testing.T) {
	st, a, b := testStore(t)
	d := New(st, "mx.x.test", nil)
	ctx := context.Background()
	if _, err := d.Deliver(ctx, Envelope{From: "z@remote.test", Recipients: []string{"A@x.test", "alias@x.test", "b@x.test"}, Trace: &Trace{Helo: "h"}}, []byte(raw)); err != nil {
		t.Fatal(err)
	}
	if count(t, st, a, "") != 1 || count(t, st, b, "") != 1 {
		t.Fatalf("a %d, b %d", count(t, st, a, ""), count(t, st, b, ""))
	}
	// One unknown recipient: nobody gets it.
	_, err := d.Deliver(ctx, Envelope{Recipients: []string{"b@x.test", "nobody@x.test"}}, []byte(raw))
	if !errors.Is(err, mailstore.ErrNoSuchAccount) {
		t.Fatalf("unknown recipient: %v", err)
	}
	if count(t, st, b, "") != 1 {
		t.Fatal("partial delivery")
	}
	if _, err := d.Deliver(ctx, Envelope{}, []byte(raw)); !errors.Is(err, ErrNoRecipients) {
		t.Fatalf("no recipients: %v", err)
	}
	loop := strings.Repeat("Received: x\r\n", DefaultMaxHops+1) + raw
	if _, err := d.Deliver(ctx, Envelope{Recipients: []string{"b@x.test"}}, []byte(loop)); !errors.Is(err, ErrLoop) {
		t.Fatalf("loop: %v", err)
	}
}

func TestFileSent(t *testing.T) {
	st, a, _ := testStore(t)
	d := New(st, "mx.x.test", nil)
	ctx := context.Background()
	r1, err := d.FileSent(ctx, a.ID, []byte(raw))
	if err != nil || r1.Existing {
		t.Fatalf("first: %+v %v", r1, err)
	}
	r2, err := d.FileSent(ctx, a.ID, []byte(raw))
	if err != nil || !r2.Existing || r2.UID != r1.UID {
		t.Fatalf("second: %+v %v", r2, err)
	}
	if n := count(t, st, a, mailstore.SpecialSent); n != 1 {
		t.Fatalf("Sent has %d", n)
	}
}
