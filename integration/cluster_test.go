package integration

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/jackc/pgx/v5"
)

// Past one machine: two roost processes (nodes) on one PostgreSQL
// database, each with its own listeners. What one node does, the other
// sees: accounts, new mail and flags (LISTEN/NOTIFY wakes IDLE), the POP3
// maildrop lock, and the outbound queue, whose entries one node alone
// takes. Helpers carry a cluster prefix.

// clusterDSN returns ROOST_TEST_POSTGRES with a fresh database made for
// this test (dropped at its end), or skips (fails in CI) without it.
func clusterDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv("ROOST_TEST_POSTGRES")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("ROOST_TEST_POSTGRES is required in CI (export ROOST_TEST_POSTGRES=\"$(.ci/postgres.sh)\")")
		}
		t.Skip("cluster tests need PostgreSQL: export ROOST_TEST_POSTGRES=\"$(bash .ci/postgres.sh)\"")
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("ROOST_TEST_POSTGRES: %v", err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := "roostit_" + hex.EncodeToString(rnd[:])
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to ROOST_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	// Registered before any node starts, so it runs after they stopped;
	// FORCE ends connections a node that failed to stop left behind.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Errorf("drop database %s: %v", name, err)
			return
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

// clusterStart runs nodes A and B on one fresh database, one after the
// other (the first start migrates the schema and makes the demo
// account), with extraTOML added to both configs.
func clusterStart(t *testing.T, extraTOML string) (a, b *Roost) {
	t.Helper()
	dsn := clusterDSN(t)
	bin := BuildRoost(t)
	store := fmt.Sprintf("[store]\nbackend = \"postgres\"\ndsn = %q\n", dsn)
	a = StartRoost(t, bin, store+extraTOML)
	b = StartRoost(t, bin, store+extraTOML)
	return a, b
}

// clusterSink is an SMTP server for a remote domain that counts the
// messages it receives by Message-ID.
type clusterSink struct {
	addr string
	mu   sync.Mutex
	ids  map[string]int // guarded by mu
}

func clusterStartSink(t *testing.T) *clusterSink {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	k := &clusterSink{addr: ln.Addr().String(), ids: map[string]int{}}
	s := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &clusterSinkSession{k}, nil }))
	s.Domain = "sink.remote.test"
	s.ReadTimeout, s.WriteTimeout = time.Minute, time.Minute
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return k
}

// counts returns a copy of the Message-ID counts.
func (k *clusterSink) counts() map[string]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make(map[string]int, len(k.ids))
	for id, n := range k.ids {
		out[id] = n
	}
	return out
}

type clusterSinkSession struct{ k *clusterSink }

var clusterMessageID = regexp.MustCompile(`(?im)^message-id:\s*<([^>]+)>`)

func (s *clusterSinkSession) Reset()                               {}
func (s *clusterSinkSession) Logout() error                        { return nil }
func (s *clusterSinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *clusterSinkSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *clusterSinkSession) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	id := "(none)"
	if m := clusterMessageID.FindSubmatch(raw); m != nil {
		id = string(m[1])
	}
	s.k.mu.Lock()
	s.k.ids[id]++
	s.k.mu.Unlock()
	return nil
}

// clusterSubmit submits raw through r's submission listener with go-smtp's
// client and AUTH PLAIN (allowed on loopback).
func clusterSubmit(r *Roost, user string, rcpts []string, raw string) error {
	c, err := smtp.Dial(r.Addr["submission"])
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("client.example.net"); err != nil {
		return err
	}
	if err := c.Auth(sasl.NewPlainClient("", user, imapPassword)); err != nil {
		return fmt.Errorf("AUTH PLAIN: %w", err)
	}
	if err := c.SendMail(user, rcpts, strings.NewReader(raw)); err != nil {
		return err
	}
	return c.Quit()
}

// clusterPOP3 is a POP3 session spoken by hand.
type clusterPOP3 struct {
	c  net.Conn
	br *bufio.Reader
}

func clusterDialPOP3(t *testing.T, addr string) *clusterPOP3 {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(60 * time.Second))
	p := &clusterPOP3{c: c, br: bufio.NewReader(c)}
	if g := p.cmd(t, ""); !strings.HasPrefix(g, "+OK") {
		t.Fatalf("POP3 greeting %q", g)
	}
	return p
}

// cmd sends line (none if empty) and returns the one-line reply.
func (p *clusterPOP3) cmd(t *testing.T, line string) string {
	t.Helper()
	if line != "" {
		fmt.Fprintf(p.c, "%s\r\n", line)
	}
	l, err := p.br.ReadString('\n')
	if err != nil {
		t.Fatalf("POP3 %q: %v", line, err)
	}
	return strings.TrimRight(l, "\r\n")
}

// login sends USER and PASS and returns PASS's reply.
func (p *clusterPOP3) login(t *testing.T, user string) string {
	t.Helper()
	if l := p.cmd(t, "USER "+user); !strings.HasPrefix(l, "+OK") {
		t.Fatalf("POP3 USER %s: %q", user, l)
	}
	return p.cmd(t, "PASS "+imapPassword)
}

func TestClusterTwoNodes(t *testing.T) {
	sink := clusterStartSink(t)
	a, b := clusterStart(t, fmt.Sprintf("[delivery.transport]\n\"remote.test\" = %q\n", sink.addr))
	smtpAddUsers(t, a, "example.org", "ann", "dev", "pop", "sender")

	t.Run("UserAddedOnALogsInOnB", func(t *testing.T) {
		if got := imapLogin(t, b.Addr["imap"], "ann@example.org", imapPassword); !strings.HasPrefix(got, "a1 OK") {
			t.Fatalf("LOGIN on node B of a user added by node A's CLI: %q", got)
		}
		code, out, errs := b.CLI(t, "", "user", "list")
		if code != 0 || !strings.Contains(out, "ann@example.org\t") {
			t.Fatalf("user list on node B: exit %d %q %s", code, out, errs)
		}
	})

	t.Run("IdleOnASeesMailAndFlagsFromB", func(t *testing.T) {
		const user = "dev@example.org"
		dev, events := imapIdleDevice(t, a, user, "INBOX")
		idle, err := dev.Idle()
		if err != nil {
			t.Fatal(err)
		}
		imapSMTPDeliver(t, b, "sender@example.net", user, imapTestMessage("cluster arrival", "through node B's MX"))
		imapExpectEvent(t, events, "EXISTS 1 after delivery on node B", func(e imapEvent) bool { return e.kind == "EXISTS" && e.num == 1 })

		other := imapLoginClient(t, b, user, nil)
		if _, err := other.Select("INBOX", nil).Wait(); err != nil {
			t.Fatal(err)
		}
		if err := other.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Silent: true, Flags: []imap.Flag{imap.FlagFlagged}}, nil).Close(); err != nil {
			t.Fatalf("STORE on node B: %v", err)
		}
		imapExpectEvent(t, events, "FETCH 1 with \\Flagged set on node B", func(e imapEvent) bool {
			return e.kind == "FETCH" && e.num == 1 && slices.Contains(e.flags, imap.FlagFlagged)
		})
		if err := idle.Close(); err != nil {
			t.Fatal(err)
		}
		if err := idle.Wait(); err != nil {
			t.Fatalf("IDLE end: %v", err)
		}
	})

	t.Run("POP3LockAcrossNodes", func(t *testing.T) {
		const user = "pop@example.org"
		imapSMTPDeliver(t, a, "sender@example.net", user, imapTestMessage("pop lock", "hello"))
		holder := clusterDialPOP3(t, a.Addr["pop3"])
		if l := holder.login(t, user); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 login on node A: %q", l)
		}
		// RFC 2449 section 8.1.2: the maildrop is locked by another session.
		second := clusterDialPOP3(t, b.Addr["pop3"])
		if l := second.login(t, user); !strings.HasPrefix(l, "-ERR [IN-USE]") {
			t.Fatalf("second POP3 login on node B while A holds the maildrop: %q, want -ERR [IN-USE]", l)
		}
		if l := holder.cmd(t, "QUIT"); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("QUIT on node A: %q", l)
		}
		// QUIT released the lock: node B may have it now.
		third := clusterDialPOP3(t, b.Addr["pop3"])
		if l := third.login(t, user); !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 login on node B after A's QUIT: %q", l)
		}
		if l := third.cmd(t, "STAT"); !strings.HasPrefix(l, "+OK 1 ") {
			t.Fatalf("STAT on node B: %q", l)
		}
		third.cmd(t, "QUIT")
	})

	t.Run("QueueEntriesTakenOnce", func(t *testing.T) {
		const n = 20
		const user = "sender@example.org"
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			node := a
			if i%2 == 1 {
				node = b
			}
			raw := fmt.Sprintf("From: <%s>\r\nTo: <dest%d@remote.test>\r\nSubject: cluster queue %d\r\n"+
				"Message-ID: <cluster-queue-%d@example.org>\r\n\r\nmessage %d\r\n", user, i, i, i, i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := clusterSubmit(node, user, []string{fmt.Sprintf("dest%d@remote.test", i)}, raw); err != nil {
					errs <- fmt.Errorf("message %d: %w", i, err)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("submission: %v", err)
		}
		// Done when the sink has every message and the shared queue is
		// empty: nothing is left that could be delivered a second time.
		var got map[string]int
		for deadline := time.Now().Add(smtpWait); ; time.Sleep(250 * time.Millisecond) {
			got = sink.counts()
			if len(got) >= n && len(smtpQueueList(t, a)) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after %v the sink has %d of %d messages and the queue holds %q", smtpWait, len(got), n, smtpQueueList(t, a))
			}
		}
		for i := range n {
			if id := fmt.Sprintf("cluster-queue-%d@example.org", i); got[id] != 1 {
				t.Errorf("%s arrived %d times, want once", id, got[id])
			}
		}
		if len(got) != n {
			t.Errorf("the sink got unexpected messages: %v", got)
		}
	})
}
