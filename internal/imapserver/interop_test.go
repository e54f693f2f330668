package imapserver

import (
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// Interoperability with an independent client: go-imap v2's imapclient.
func dialClient(t *testing.T, env *testEnv, opts *imapclient.Options) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(env.addr, opts)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Login("alice@example.test", testPassword).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	return c
}

func TestInteropImapclient(t *testing.T) {
	env := newTestEnv(t, Config{})
	for i := 1; i <= 3; i++ {
		env.deliver(t, "alice@example.test", testMessage(i))
	}
	c := dialClient(t, env, nil)

	list, err := c.List("", "*", nil).Collect()
	if err != nil || len(list) != 6 {
		t.Fatalf("LIST: %v %v", list, err)
	}
	if err := c.Create("Projects/2026", nil).Wait(); err != nil {
		t.Fatalf("CREATE: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 3 || sel.UIDNext != 4 {
		t.Fatalf("SELECT: %+v %v", sel, err)
	}
	msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{
		UID: true, Flags: true, Envelope: true, RFC822Size: true, InternalDate: true,
		BodyStructure: &imap.FetchItemBodyStructure{Extended: true},
		BodySection:   []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil || len(msgs) != 3 {
		t.Fatalf("FETCH: %v %v", msgs, err)
	}
	if msgs[1].Envelope.Subject != "test message 2" || msgs[1].UID != 2 ||
		!strings.Contains(string(msgs[1].FindBodySection(&imap.FetchItemBodySection{})), "Hello body 2") {
		t.Fatalf("FETCH data: %+v", msgs[1])
	}
	if err := c.Store(imap.UIDSetNum(2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
		t.Fatalf("STORE: %v", err)
	}
	sd, err := c.UIDSearch(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagFlagged}}, nil).Wait()
	if err != nil || len(sd.AllUIDs()) != 1 || sd.AllUIDs()[0] != 2 {
		t.Fatalf("SEARCH: %+v %v", sd, err)
	}
	raw := "Subject: appended\r\n\r\nhi\r\n"
	app := c.Append("INBOX", int64(len(raw)), &imap.AppendOptions{Flags: []imap.Flag{imap.FlagSeen}})
	app.Write([]byte(raw))
	app.Close()
	ad, err := app.Wait()
	if err != nil || ad.UID != 4 {
		t.Fatalf("APPEND: %+v %v", ad, err)
	}
	cd, err := c.Copy(imap.UIDSetNum(1, 2), "Projects/2026").Wait()
	if err != nil || cd.DestUIDs.String() != "1:2" {
		t.Fatalf("COPY: %+v %v", cd, err)
	}
	md, err := c.Move(imap.UIDSetNum(3), "Archive").Wait()
	if err != nil || md.DestUIDs.String() != "1" {
		t.Fatalf("MOVE: %+v %v", md, err)
	}
	st, err := c.Status("Projects/2026", &imap.StatusOptions{NumMessages: true, UIDNext: true}).Wait()
	if err != nil || *st.NumMessages != 2 {
		t.Fatalf("STATUS: %+v %v", st, err)
	}
	if err := c.Logout().Wait(); err != nil {
		t.Fatalf("LOGOUT: %v", err)
	}
}

// IDLE through imapclient: unilateral EXISTS, FETCH and EXPUNGE arrive.
func TestInteropIdle(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.deliver(t, "alice@example.test", testMessage(1))
	exists := make(chan uint32, 10)
	fetched := make(chan uint32, 10)
	expunged := make(chan uint32, 10)
	c := dialClient(t, env, &imapclient.Options{UnilateralDataHandler: &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
		Fetch:   func(m *imapclient.FetchMessageData) { fetched <- m.SeqNum },
		Expunge: func(n uint32) { expunged <- n },
	}})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	wait := func(ch chan uint32, want uint32, what string) {
		t.Helper()
		select {
		case got := <-ch:
			if got != want {
				t.Fatalf("%s: got %d want %d", what, got, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s", what)
		}
	}
	env.deliver(t, "alice@example.test", testMessage(2))
	wait(exists, 2, "EXISTS")
	b := env.login(t, "alice@example.test")
	b.ok("SELECT INBOX")
	b.ok(`STORE 2 +FLAGS (\Seen)`)
	wait(fetched, 2, "FETCH")
	b.ok(`STORE 1 +FLAGS.SILENT (\Deleted)`)
	wait(fetched, 1, "FETCH")
	b.ok("EXPUNGE")
	wait(expunged, 1, "EXPUNGE")
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}

func dialRaw(t *testing.T, env *testEnv) *imapclient.Client {
	t.Helper()
	c, err := imapclient.DialInsecure(env.addr, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
