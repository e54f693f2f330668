package queue

import (
	"context"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/mailstore"
)

// enqueueN queues n messages to bob@remote.test, one entry each.
func enqueueN(t *testing.T, q *Queue, from string, acct int64, n int) {
	t.Helper()
	for range n {
		if err := q.Enqueue(context.Background(), from, []string{"bob@remote.test"}, []byte(testMsg), acct); err != nil {
			t.Fatal(err)
		}
	}
}

// wantConnections waits for the queue to empty and checks how many
// connections the sink accepted for it.
func wantConnections(t *testing.T, st mailstore.Store, sk *sink, want int32) {
	t.Helper()
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	if n := sk.accepts.Load(); n != want {
		t.Fatalf("the deliveries took %d connections, want %d", n, want)
	}
}

// TestConnectionReuse: deliveries one after another to one hop share one
// SMTP session (RFC 5321 section 3.3), over TLS as the first one set up.
func TestConnectionReuse(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSinkTLS(t, "", selfSigned(t))
	q := New(st, Config{Hostname: "mx.x.test", Workers: 1, Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	enqueueN(t, q, "alice@x.test", alice.ID, 3)
	for i, m := range sk.wait(t, 3) {
		if !m.TLS || m.Data != testMsg {
			t.Errorf("message %d: TLS %v, data %q", i, m.TLS, m.Data)
		}
	}
	wantConnections(t, st, sk, 1)
}

// TestReusedConnectionGone: a kept connection the server has since closed
// fails its RSET, and the delivery connects again within the same attempt
// (no retry later, no error recorded).
func TestReusedConnectionGone(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSinkTLS(t, "", nil, func(srv *smtp.Server) { srv.ReadTimeout = 200 * time.Millisecond }) // drops idle clients
	q := New(st, Config{Hostname: "mx.x.test", Workers: 1, RetryBase: time.Hour, Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	enqueueN(t, q, "alice@x.test", alice.ID, 1)
	sk.wait(t, 1)
	waitFor(t, "the server dropping the idle connection", func() bool { return sk.closed.Load() == 1 })
	enqueueN(t, q, "alice@x.test", alice.ID, 1)
	if m := sk.wait(t, 2); m[1].Data != testMsg {
		t.Fatalf("second message %q", m[1].Data)
	}
	wantConnections(t, st, sk, 2)
}

// TestIdleConnectionClosed: a kept connection waits in the pool, and is
// closed after ConnIdle.
func TestIdleConnectionClosed(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Workers: 1, ConnIdle: time.Second, Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	enqueueN(t, q, "alice@x.test", alice.ID, 1)
	sk.wait(t, 1)
	waitFor(t, "the connection kept", func() bool { return q.conns.count() == 1 && sk.closed.Load() == 0 })
	waitFor(t, "the idle connection closed", func() bool { return q.conns.count() == 0 && sk.closed.Load() == 1 })
}
