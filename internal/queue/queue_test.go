package queue

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestDeliverViaTransport(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"Remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@remote.test", "carol@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	m := sk.wait(t, 1)
	if m[0].From != "alice@x.test" || strings.Join(m[0].Rcpts, ",") != "bob@remote.test,carol@remote.test" || m[0].Data != testMsg {
		t.Fatalf("sink got %+v", m[0])
	}
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
}

func TestRetryAfterSinkDown(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	// The first attempts fail.
	addr := closedAddr(t)
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": addr}, RetryBase: 300 * time.Millisecond, WarnAfter: -1}, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a failed attempt", func() bool {
		es, _ := st.ListQueue(context.Background())
		return len(es) == 1 && es[0].Attempts >= 1 && strings.Contains(es[0].LastError, "connection to")
	})
	sk := startSink(t, addr)
	m := sk.wait(t, 1)
	if m[0].Data != testMsg {
		t.Fatalf("sink got %q", m[0].Data)
	}
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	if n := len(inbox(t, st, alice)); n != 0 {
		t.Fatalf("sender got %d DSNs for a delivered message", n)
	}
}

func TestPermanentFailureBounces(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}, RetryBase: 200 * time.Millisecond}, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"reject@remote.test", "bob@remote.test", "defer@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	m := sk.wait(t, 1)
	if strings.Join(m[0].Rcpts, ",") != "bob@remote.test" {
		t.Fatalf("sink rcpts %v", m[0].Rcpts)
	}
	waitFor(t, "a bounce", func() bool { return len(inbox(t, st, alice)) == 1 })
	d := parseDSN(t, inbox(t, st, alice)[0])
	if len(d.perRcpt) != 1 {
		t.Fatalf("per-recipient: %v", d.perRcpt)
	}
	r := d.perRcpt[0]
	if r.Get("Final-Recipient") != "rfc822; reject@remote.test" || r.Get("Action") != "failed" || r.Get("Status") != "5.1.1" ||
		!strings.HasPrefix(r.Get("Diagnostic-Code"), "smtp; 550 5.1.1") {
		t.Fatalf("DSN recipient: %v", r)
	}
	if !strings.Contains(d.headers, "Message-ID: <out@x.test>") || d.header.Get("From") == "" {
		t.Fatalf("DSN headers: %q", d.headers)
	}
	// The deferred recipient stays queued, alone.
	waitFor(t, "requeued deferred recipient", func() bool {
		es, _ := st.ListQueue(context.Background())
		return len(es) == 1 && strings.Join(es[0].Recipients, ",") == "defer@remote.test" && es[0].Attempts >= 1
	})
}

func TestNeverBounceABounce(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "", []string{"reject@remote.test"}, []byte(testMsg), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	if n := len(inbox(t, st, alice)); n != 0 {
		t.Fatalf("bounce of a bounce delivered (%d)", n)
	}
}

func TestExpiryAndDelayWarning(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	q := expiringQueue(t, st)
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "expiry", func() bool { return queueLen(t, st) == 0 })
	msgs := inbox(t, st, alice)
	if len(msgs) != 2 {
		t.Fatalf("want a delay warning and a bounce, got %d messages", len(msgs))
	}
	warn, final := parseDSN(t, msgs[0]), parseDSN(t, msgs[1])
	if warn.perRcpt[0].Get("Action") != "delayed" || !strings.HasPrefix(warn.perRcpt[0].Get("Status"), "4.") {
		t.Fatalf("warning: %v", warn.perRcpt[0])
	}
	if final.perRcpt[0].Get("Action") != "failed" || final.perRcpt[0].Get("Status") != "5.4.7" {
		t.Fatalf("bounce: %v", final.perRcpt[0])
	}
}

func TestQueueSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	st, alice := openStore(t, dir)
	if _, err := enqueue(context.Background(), st, "alice@x.test", []string{"bob@remote.test"}, []byte(testMsg), alice.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, _ = openStore(t, dir)
	defer st.Close()
	sk := startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	if m := sk.wait(t, 1); m[0].Data != testMsg {
		t.Fatalf("sink got %q", m[0].Data)
	}
}

func TestTwoWorkersDeliverOnce(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	const n = 40
	for i := 0; i < n; i++ {
		raw := strings.Replace(testMsg, "Subject: out", fmt.Sprintf("Subject: m%d", i), 1)
		if _, err := enqueue(context.Background(), st, "alice@x.test", []string{fmt.Sprintf("u%d@remote.test", i)}, []byte(raw), alice.ID, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	for _, node := range []string{"node-a", "node-b"} {
		runQueue(t, New(st, Config{Hostname: "mx.x.test", NodeID: node, Transport: map[string]string{"remote.test": sk.addr}}, testLogger()))
	}
	sk.wait(t, n)
	waitFor(t, "empty queue", func() bool { return queueLen(t, st) == 0 })
	seen := map[string]int{}
	for _, m := range sk.messages() {
		seen[m.Rcpts[0]]++
	}
	if len(seen) != n || len(sk.messages()) != n {
		t.Fatalf("%d messages for %d recipients", len(sk.messages()), len(seen))
	}
}

func TestDropBounces(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	ids, err := enqueue(context.Background(), st, "alice@x.test", []string{"bob@remote.test"}, []byte(testMsg), alice.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	es, err := List(context.Background(), st)
	if err != nil || len(es) != 1 || es[0].ID != ids[0] {
		t.Fatalf("List: %v %v", es, err)
	}
	if n, err := Drop(context.Background(), st, "mx.x.test", ids, testLogger()); err != nil || n != 1 {
		t.Fatalf("Drop: %d %v", n, err)
	}
	if queueLen(t, st) != 0 {
		t.Fatal("entry still queued")
	}
	msgs := inbox(t, st, alice)
	if len(msgs) != 1 {
		t.Fatalf("%d bounces", len(msgs))
	}
	if r := parseDSN(t, msgs[0]).perRcpt[0]; r.Get("Action") != "failed" || r.Get("Final-Recipient") != "rfc822; bob@remote.test" {
		t.Fatalf("drop DSN: %v", r)
	}
	if _, err := Drop(context.Background(), st, "mx.x.test", ids, nil); err == nil {
		t.Fatal("dropping a missing entry succeeded")
	}
}

func TestRetryMakesDue(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	ids, err := enqueue(context.Background(), st, "alice@x.test", []string{"bob@remote.test"}, []byte(testMsg), alice.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	// Push the entry into the future as a failed attempt would.
	e, err := st.GetQueueEntry(context.Background(), ids[0])
	if err != nil {
		t.Fatal(err)
	}
	e.Attempts, e.NextAttempt = 1, time.Now().Add(time.Hour)
	if err := st.UpdateQueueEntry(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	time.Sleep(200 * time.Millisecond)
	if len(sk.messages()) != 0 {
		t.Fatal("delivered before due")
	}
	if n, err := q.Retry(context.Background(), ids); err != nil || n != 1 {
		t.Fatalf("Retry: %d %v", n, err)
	}
	sk.wait(t, 1)
}

func TestOpportunisticSTARTTLS(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSinkTLS(t, "", selfSigned(t))
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@remote.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	// An untrusted certificate does not stop opportunistic TLS (RFC 7435).
	if m := sk.wait(t, 1); !m[0].TLS || m[0].Data != testMsg {
		t.Fatalf("sink got %+v", m[0])
	}
}

func TestDotStuffingOutbound(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	sk := startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Transport: map[string]string{"remote.test": sk.addr}}, testLogger())
	runQueue(t, q)
	raw := testMsg + ".leading dot\r\n.\r\n..two\r\n"
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"bob@remote.test"}, []byte(raw), alice.ID); err != nil {
		t.Fatal(err)
	}
	if m := sk.wait(t, 1); m[0].Data != raw {
		t.Fatalf("sink got %q, want %q", m[0].Data, raw)
	}
}

func TestSmarthostAndTransportPrecedence(t *testing.T) {
	st, alice := openStore(t, t.TempDir())
	defer st.Close()
	relay, direct := startSink(t, ""), startSink(t, "")
	q := New(st, Config{Hostname: "mx.x.test", Smarthost: relay.addr, Transport: map[string]string{"direct.test": direct.addr}}, testLogger())
	runQueue(t, q)
	if err := q.Enqueue(context.Background(), "alice@x.test", []string{"a@far.test", "b@direct.test", "A@far.test"}, []byte(testMsg), alice.ID); err != nil {
		t.Fatal(err)
	}
	if m := relay.wait(t, 1); strings.Join(m[0].Rcpts, ",") != "a@far.test" {
		t.Fatalf("smarthost got %v", m[0].Rcpts)
	}
	if m := direct.wait(t, 1); strings.Join(m[0].Rcpts, ",") != "b@direct.test" {
		t.Fatalf("transport got %v", m[0].Rcpts)
	}
}
