package storetest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// childEnv names the environment variable that turns a test binary into a
// crash-test child (see MaybeChild). Its value is a JSON childSpec.
const childEnv = "ROOST_STORETEST_CHILD"

type childSpec struct {
	Role    string `json:"role"`
	Backend string `json:"backend"`
	Key     string `json:"key"`
	Round   int    `json:"round"`
}

const crashAccount = "crash@example.test"

// MaybeChild must be the first call in a backend's TestMain, with every
// Backend the package runs the suite over. In the parent test process it
// returns at once. In a child started by the crash test it runs the
// child's role (deliver until killed) for the backend of that name and
// exits the process.
func MaybeChild(backends ...Backend) {
	v := os.Getenv(childEnv)
	if v == "" {
		return
	}
	var spec childSpec
	if err := json.Unmarshal([]byte(v), &spec); err != nil {
		fmt.Fprintf(os.Stderr, "storetest child: bad %s: %v\n", childEnv, err)
		os.Exit(2)
	}
	i := slices.IndexFunc(backends, func(b Backend) bool { return b.Name == spec.Backend })
	if i < 0 {
		fmt.Fprintf(os.Stderr, "storetest child: spec for backend %q, which TestMain did not pass\n", spec.Backend)
		os.Exit(2)
	}
	b := backends[i]
	switch spec.Role {
	case "crash":
		os.Exit(crashChild(b, spec))
	default:
		fmt.Fprintf(os.Stderr, "storetest child: unknown role %q\n", spec.Role)
		os.Exit(2)
	}
}

// crashMsg is the deterministic message of a crash-test id, so the parent
// can check a stored copy byte for byte. Sizes vary from a few hundred
// bytes to 256 KB so kills land in the middle of writes of every size.
func crashMsg(id string) []byte {
	h := fnv.New32a()
	h.Write([]byte(id))
	v := h.Sum32()
	size := int(v%32)*1024 + 200
	if v%32 == 0 {
		size = 256 << 10
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "From: crash@example.test\r\nTo: %s\r\nSubject: crash %s\r\nX-Crash-ID: %s\r\nMessage-ID: <%s@crash.invalid>\r\n\r\n", crashAccount, id, id, id)
	line := fmt.Sprintf("%s %08x the quick brown fox jumps over the lazy dog\r\n", id, v)
	if n := size - b.Len(); n > 0 {
		b.Write(bytes.Repeat([]byte(line), n/len(line)+1))
	}
	return b.Bytes()
}

// crashID extracts the X-Crash-ID of a stored message.
func crashID(raw []byte) string {
	_, rest, ok := bytes.Cut(raw, []byte("\r\nX-Crash-ID: "))
	if !ok {
		return ""
	}
	id, _, _ := bytes.Cut(rest, []byte("\r\n"))
	return string(id)
}

// crashChild delivers as fast as it can from several goroutines, printing
// "ACK <id>" the moment each Deliver/Append returns nil, while another
// goroutine moves messages around, until the parent kills it.
func crashChild(b Backend, spec childSpec) int {
	ctx := context.Background()
	st, err := b.Open(spec.Key)
	if err != nil {
		fmt.Fprintf(os.Stderr, "child open: %v\n", err)
		return 1
	}
	acct, err := st.GetAccount(ctx, crashAccount)
	if err != nil {
		fmt.Fprintf(os.Stderr, "child account: %v\n", err)
		return 1
	}
	arch, err1 := st.GetMailbox(ctx, acct.ID, "Archive")
	moved, err2 := st.GetMailbox(ctx, acct.ID, "Moved")
	if err := errors.Join(err1, err2); err != nil {
		fmt.Fprintf(os.Stderr, "child mailboxes: %v\n", err)
		return 1
	}
	var outMu sync.Mutex
	ack := func(ids ...string) {
		outMu.Lock()
		defer outMu.Unlock()
		for _, id := range ids {
			// One write per line: os.Stdout is unbuffered.
			os.Stdout.WriteString("ACK " + id + "\n")
		}
	}
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "child: %v\n", err)
		os.Exit(1)
	}
	for w := range 8 {
		go func() {
			for i := 0; ; i++ {
				id := fmt.Sprintf("r%d-w%d-%d", spec.Round, w, i)
				switch w % 3 {
				case 0, 1:
					if _, err := st.Deliver(ctx, mailstore.Delivery{Raw: crashMsg(id), Recipients: []mailstore.DeliveryTarget{{AccountID: acct.ID}}}); err != nil {
						fail(fmt.Errorf("deliver %s: %w", id, err))
					}
					ack(id)
				default: // MULTIAPPEND of two
					ida, idb := id+"a", id+"b"
					_, err := st.Append(ctx, acct.ID, []mailstore.AppendRequest{
						{MailboxID: arch.ID, Raw: crashMsg(ida)},
						{MailboxID: arch.ID, Raw: crashMsg(idb), Flags: []string{mailstore.FlagSeen}},
					})
					if err != nil {
						fail(fmt.Errorf("append %s: %w", id, err))
					}
					ack(ida, idb)
				}
			}
		}()
	}
	go func() {
		r := rand.New(rand.NewPCG(uint64(spec.Round), 7))
		for {
			u, _, err := st.UIDs(ctx, acct.ID, arch.ID)
			if err != nil {
				fail(err)
			}
			if len(u) == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
			pick := u[r.IntN(len(u))]
			if _, err := st.Move(ctx, acct.ID, arch.ID, mailstore.UIDSetOf(pick), moved.ID); err != nil {
				fail(fmt.Errorf("move: %w", err))
			}
			if _, err := st.StoreFlags(ctx, acct.ID, mailstore.StoreFlagsRequest{MailboxID: moved.ID, UIDs: mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, Mode: mailstore.FlagsAdd, Flags: []string{"$Moved"}}); err != nil {
				fail(fmt.Errorf("store: %w", err))
			}
		}
	}()
	time.Sleep(3 * time.Minute) // the parent kills us long before
	fmt.Fprintln(os.Stderr, "child: never killed")
	return 3
}

// testCrash kills a delivering child process at random points and checks
// that the store it leaves behind holds every acknowledged message, byte
// exact, no partial message, consistent counts, and UIDs that continue
// above the old ones.
func testCrash(t *testing.T, b Backend) {
	key := b.Fresh(t)
	setup, err := b.Open(key)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := setup.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	acct, err := setup.AddAccount(ctx, crashAccount, "x")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setup.CreateMailbox(ctx, acct.ID, "Moved", ""); err != nil {
		t.Fatal(err)
	}
	if err := setup.Close(); err != nil {
		t.Fatal(err)
	}

	acked := map[string]bool{}
	highest := map[string]mailstore.UID{} // per mailbox name, every UID ever seen
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	const rounds = 3
	for round := range rounds {
		target := 20 + r.IntN(120)
		start := time.Now()
		n := runCrashChild(t, b, key, round, target, acked)
		ran := time.Since(start)
		if t.Failed() {
			return
		}
		st, err := b.Open(key)
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		verifyCrash(t, st, round, acked, highest)
		if err := st.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		t.Logf("round %d: killed after %d acks (target %d) and %v; %d acknowledged in all; verified in %v",
			round, n, target, ran.Round(time.Millisecond), len(acked), (time.Since(start) - ran).Round(time.Millisecond))
		if t.Failed() {
			return
		}
	}
}

// runCrashChild starts a child, collects its acks into acked, kills it with
// SIGKILL once target acks arrived, and returns this round's ack count.
func runCrashChild(t *testing.T, b Backend, key string, round, target int, acked map[string]bool) int {
	spec, _ := json.Marshal(childSpec{Role: "crash", Backend: b.Name, Key: key, Round: round})
	cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.count=1")
	cmd.Env = append(os.Environ(), childEnv+"="+string(spec))
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start child: %v", err)
	}
	lines := make(chan string)
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			for range lines { // let the reader finish before Wait closes the pipe
			}
			_ = cmd.Wait()
		}
	}()
	go func() {
		defer close(lines)
		br := bufio.NewReader(out)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				// A line cut short by the kill was never fully printed,
				// so it is no acknowledgement.
				return
			}
			lines <- strings.TrimSuffix(line, "\n")
		}
	}()
	n := 0
	// Generous: under -race on a loaded machine a child may ack slowly.
	timeout := time.After(240 * time.Second)
	record := func(line string) {
		if id, ok := strings.CutPrefix(line, "ACK "); ok {
			acked[id] = true
			n++
		}
	}
	for n < target {
		select {
		case line, ok := <-lines:
			if !ok {
				_ = cmd.Wait()
				killed = true
				t.Fatalf("round %d: child exited after %d acks (%v); does TestMain call storetest.MaybeChild? stderr:\n%s", round, n, cmd.ProcessState, stderr.String())
			}
			record(line)
		case <-timeout:
			t.Fatalf("round %d: only %d of %d acks in 240s; stderr:\n%s", round, n, target, stderr.String())
		}
	}
	// SIGKILL: no deferred cleanup, no Close, in the middle of whatever
	// the writers were doing.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatalf("kill: %v", err)
	}
	killed = true
	// Acks already in the pipe were printed before the kill: they count.
	for line := range lines {
		record(line)
	}
	_ = cmd.Wait()
	if cmd.ProcessState.ExitCode() == 1 || cmd.ProcessState.ExitCode() == 2 {
		t.Errorf("round %d: child failed before the kill: %s", round, stderr.String())
	}
	return n
}

func verifyCrash(t *testing.T, st mailstore.Store, round int, acked map[string]bool, highest map[string]mailstore.UID) {
	t.Helper()
	ctx := context.Background()
	acct, err := st.GetAccount(ctx, crashAccount)
	if err != nil {
		t.Fatalf("round %d: account after crash: %v", round, err)
	}
	mbs, err := st.ListMailboxes(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	top, err := st.HighestModSeq(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	present := map[string]int{}
	var totalMsgs, totalBytes int64
	for _, mb := range mbs {
		uids, _, err := st.UIDs(ctx, acct.ID, mb.ID)
		if err != nil {
			t.Fatalf("UIDs(%s): %v", mb.Name, err)
		}
		var msgs []mailstore.Message
		err = st.Fetch(ctx, acct.ID, mb.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchIDs|mailstore.FetchSize, 0, func(m *mailstore.Message) error {
			msgs = append(msgs, *m)
			return nil
		})
		if err != nil {
			t.Fatalf("Fetch(%s): %v", mb.Name, err)
		}
		status, err := st.Status(ctx, acct.ID, mb.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(msgs) != len(uids) || status.Messages != int64(len(uids)) {
			t.Errorf("round %d %s: UIDs lists %d, Fetch gives %d, Status counts %d", round, mb.Name, len(uids), len(msgs), status.Messages)
		}
		var size int64
		maxUID := highest[mb.Name]
		for _, m := range msgs {
			size += m.Size
			maxUID = max(maxUID, m.UID)
			if m.ModSeq > top || m.ModSeq > status.HighestModSeq {
				t.Errorf("round %d %s UID %d: modseq %d above the account's %d / mailbox's %d", round, mb.Name, m.UID, m.ModSeq, top, status.HighestModSeq)
			}
			raw, err := st.ReadBlob(ctx, m.BlobID)
			if err != nil {
				t.Errorf("round %d %s UID %d: blob unreadable: %v", round, mb.Name, m.UID, err)
				continue
			}
			sum := sha256.Sum256(raw)
			id := crashID(raw)
			if int64(len(raw)) != m.Size || hex.EncodeToString(sum[:]) != m.BlobID || id == "" || !bytes.Equal(raw, crashMsg(id)) {
				t.Errorf("round %d %s UID %d (%q): half-written message: %d bytes, size %d", round, mb.Name, m.UID, id, len(raw), m.Size)
				continue
			}
			present[id]++
		}
		if status.Size != size {
			t.Errorf("round %d %s: Status size %d, messages sum to %d", round, mb.Name, status.Size, size)
		}
		if status.UIDNext <= maxUID {
			t.Errorf("round %d %s: UIDNEXT %d not above UID %d", round, mb.Name, status.UIDNext, maxUID)
		}
		v, err := st.Vanished(ctx, acct.ID, mb.ID, 0)
		if err != nil {
			t.Errorf("round %d %s: Vanished: %v", round, mb.Name, err)
		}
		for _, u := range v {
			maxUID = max(maxUID, u)
		}
		highest[mb.Name] = maxUID
		totalMsgs += status.Messages
		totalBytes += size
	}
	missing := 0
	for id := range acked {
		switch c := present[id]; {
		case c == 0:
			missing++
			if missing <= 10 {
				t.Errorf("round %d: acknowledged message %s lost", round, id)
			}
		case c > 1:
			t.Errorf("round %d: message %s present %d times", round, id, c)
		}
	}
	if missing > 0 {
		t.Errorf("round %d: %d of %d acknowledged messages lost", round, missing, len(acked))
	}
	for id, c := range present {
		if c > 1 && !acked[id] {
			t.Errorf("round %d: unacknowledged message %s present %d times", round, id, c)
		}
	}
	acc, err := st.GetAccountByID(ctx, acct.ID)
	if err != nil {
		t.Fatal(err)
	}
	if acc.UsedMessages != totalMsgs || acc.UsedBytes != totalBytes {
		t.Errorf("round %d: usage %d msgs %d bytes; mailboxes hold %d msgs %d bytes", round, acc.UsedMessages, acc.UsedBytes, totalMsgs, totalBytes)
	}
	// New UIDs continue above every UID the crashed process may have used.
	for _, name := range []string{"INBOX", "Archive", "Moved"} {
		mb, err := st.GetMailbox(ctx, acct.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		id := fmt.Sprintf("probe-%d-%s", round, name)
		res, err := st.Append(ctx, acct.ID, []mailstore.AppendRequest{{MailboxID: mb.ID, Raw: crashMsg(id)}})
		if err != nil {
			t.Fatalf("round %d: append after crash: %v", round, err)
		}
		if res[0].UID <= highest[name] {
			t.Errorf("round %d %s: new UID %d not above %d", round, name, res[0].UID, highest[name])
		}
		if res[0].ModSeq <= top {
			t.Errorf("round %d: new modseq %d not above %d", round, res[0].ModSeq, top)
		}
		top = res[0].ModSeq
		highest[name] = res[0].UID
		acked[id] = true
	}
}

// lockedBuffer is an io.Writer for a child's stderr read while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

var _ io.Writer = (*lockedBuffer)(nil)
