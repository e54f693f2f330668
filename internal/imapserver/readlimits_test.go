package imapserver

import (
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// allocatedSince is how many bytes the whole test process (server and
// client share it) has allocated since before.
func allocatedSince(before *runtime.MemStats) uint64 {
	var now runtime.MemStats
	runtime.ReadMemStats(&now)
	return now.TotalAlloc - before.TotalAlloc
}

// watchAlloc fails the test if the process allocates more than limit
// bytes within d. A server that allocates an announced 50 MiB literal up
// front exceeds a 16 MiB limit by far; one that allocates as data arrives
// stays well under it.
func watchAlloc(t *testing.T, before *runtime.MemStats, d time.Duration, limit uint64, what string) {
	t.Helper()
	var n uint64
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if n = allocatedSince(before); n > limit {
			t.Fatalf("%s: the process allocated %d MiB", what, n>>20)
		}
	}
	t.Logf("%s: the process allocated %d KiB", what, n>>10)
}

// A client that is not logged in announces a 50 MiB non-synchronizing
// literal and sends nothing more. A server that allocated the announced
// size would let every unauthenticated connection pin 50 MiB or more;
// before login a literal is bounded by MaxLiteralBytes (APPEND is only
// valid once authenticated, RFC 9051 section 6.3.12).
func TestAnnouncedLiteralBeforeLoginNotAllocated(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.dial(t)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	c.send("a1 APPEND INBOX {52428800+}")
	watchAlloc(t, &before, 2*time.Second, 16<<20, "announced 50 MiB literal before login")
}

// Before login, a literal over MaxLiteralBytes is refused with
// BAD [TOOBIG] (RFC 7889 section 4 / RFC 7888 section 4): the client's
// data is skipped and the session goes on.
func TestLiteralBeforeLoginBoundedAndSessionGoesOn(t *testing.T) {
	env := newTestEnv(t, Config{MaxLiteralBytes: 1000})
	c := env.dial(t)
	mustHave(t, c.cmd("APPEND INBOX {2000+}\r\n"+strings.Repeat("x", 2000)), `^t\d+ BAD \[TOOBIG\]`)
	mustHave(t, c.cmd("NOOP"), `^t\d+ OK NOOP completed$`)
	// Within the bound, the literal is read and APPEND refused for the state.
	mustHave(t, c.cmd("APPEND INBOX {5+}\r\nhello"), `^t\d+ BAD APPEND not allowed in this state$`)
}

// Once logged in, a 50 MiB APPEND is within the limit, but the server
// must hold only what has arrived: a client that announces it and sends
// 1 MiB costs about that, not 50 MiB.
func TestAnnouncedAppendLiteralGrowsWithData(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.login(t, alice)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	c.send("a1 APPEND INBOX {52428800+}")
	_ = c.c.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c.c, strings.Repeat("x", 1<<20)); err != nil {
		t.Fatalf("write: %v", err)
	}
	watchAlloc(t, &before, 2*time.Second, 16<<20, "announced 50 MiB APPEND, 1 MiB sent")
}

// A command of many empty non-synchronizing literals is bytes really
// sent, but each line is short and the literals add nothing to the
// literal total: without a cap on the whole command the server buffers
// all of it. It must answer BAD once the command passes MaxLineBytes plus
// the literal bound, skip the rest, and keep the session.
func TestCommandOfEmptyLiteralsBounded(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.dial(t)
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	// A []byte, written as is: a string would be copied on every write.
	chunk := []byte(strings.Repeat(" {0+}\r\n", 10000))
	_ = c.c.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := io.WriteString(c.c, "a1 LOGIN {0+}\r\n"); err != nil {
		t.Fatalf("write: %v", err)
	}
	for range 120 { // about 8 MiB
		if _, err := c.c.Write(chunk); err != nil {
			t.Fatalf("write: %v", err)
		}
	}
	c.send(" x")
	l := c.line()
	// Server and client share the process: 8 MiB sent costs the client
	// about 1 MiB here; the unfixed server allocated over 80 MiB.
	n := allocatedSince(&before)
	t.Logf("reply %q; the process allocated %d KiB", l, n>>10)
	if n > 6<<20 {
		t.Fatalf("an 8 MiB command made the process allocate %d MiB (reply %q)", n>>20, l)
	}
	if !strings.HasPrefix(l, "a1 BAD ") {
		t.Fatalf("reply %q, want a1 BAD", l)
	}
	mustHave(t, c.cmd("NOOP"), `^t\d+ OK NOOP completed$`)
}
