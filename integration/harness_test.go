// Package integration builds the real roost binary, runs it on 127.0.0.1
// and drives it from outside: the CLI, HTTP, and protocol clients.
//
// harness_test.go holds the shared pieces: BuildRoost, FreeAddr,
// StartRoost (a running `roost serve` with a temp config and data dir).
package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestMain removes the binary BuildRoost made. It is the package's only
// TestMain: tests that need set-up add it to their own helpers.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

var (
	buildOnce sync.Once
	buildDir  string
	buildBin  string
	buildErr  error
)

// BuildRoost compiles ./cmd/roost once per test binary and returns its
// path.
func BuildRoost(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(file))
		if buildDir, buildErr = os.MkdirTemp("", "roost-integration-"); buildErr != nil {
			return
		}
		buildBin = filepath.Join(buildDir, "roost")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/roost")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// FreeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	return FreeAddrs(t, 1)[0]
}

// FreeAddrs returns n distinct free 127.0.0.1 addresses: all n ports are
// held open together while they are picked, so none repeats.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out
}

// Roost is a running `roost serve`.
type Roost struct {
	Bin, Dir, Config string
	// Addr maps listener names ("imap", "http", ...) to their address.
	Addr map[string]string
	// DemoPassword is the password printed for demo@example.test.
	DemoPassword string

	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{}
	err    error // Wait's result, after exited is closed
}

// StartRoost writes a config with every listener on a free 127.0.0.1 port
// (plus extraTOML, which may add sections) and starts the server, waiting
// until /healthz answers. The server is stopped at the end of the test.
func StartRoost(t testing.TB, bin, extraTOML string) *Roost {
	t.Helper()
	dir := t.TempDir()
	r := &Roost{Bin: bin, Dir: dir, Config: filepath.Join(dir, "roost.toml"), Addr: map[string]string{}}
	names := []string{"smtp", "submission", "submissions", "imap", "imaps", "pop3", "pop3s", "http"}
	var b strings.Builder
	fmt.Fprintf(&b, "hostname = \"mail.example.test\"\ndata_dir = %q\n", filepath.Join(dir, "data"))
	b.WriteString(extraTOML)
	b.WriteString("\n[listen]\n")
	addrs := FreeAddrs(t, len(names))
	for i, n := range names {
		fmt.Fprintf(&b, "%s = [%q]\n", n, addrs[i])
	}
	if !strings.Contains(extraTOML, "[auth]") {
		// Cheap hashing: tests log in often and the machine is shared.
		b.WriteString("[auth]\nargon2_time = 1\nargon2_memory_kib = 1024\nargon2_threads = 1\nfail_delay = \"10ms\"\n")
	}
	if err := os.WriteFile(r.Config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	r.launch(t, len(names))
	return r
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (r *Roost) Kill(t testing.TB) {
	t.Helper()
	_ = r.cmd.Process.Kill()
	<-r.exited
}

// Restart runs `roost serve` again on the same config and data, after
// Stop or Kill, and waits until it answers.
func (r *Roost) Restart(t testing.TB) {
	t.Helper()
	select {
	case <-r.exited:
	default:
		t.Fatal("Restart: the server is still running")
	}
	n := len(r.Addr)
	r.Addr = map[string]string{}
	r.launch(t, n)
}

// launch starts the server on r.Config and waits for its n listeners and
// its health check.
func (r *Roost) launch(t testing.TB, n int) {
	t.Helper()
	r.cmd = exec.Command(r.Bin, "serve", "--config", r.Config)
	r.cmd.Dir = r.Dir
	stdout, err := r.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	r.stderr = &syncBuffer{}
	r.cmd.Stderr = r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.exited = make(chan struct{})
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	go func() { r.err = r.cmd.Wait(); close(r.exited) }()
	// Stops whichever process is running at the end (Stop on one that
	// has exited returns at once).
	t.Cleanup(func() { r.Stop(t) })

	// Startup prints the demo password (fresh store) and one line per
	// listener; collect until every listener is reported.
	deadline := time.After(90 * time.Second)
	for len(r.Addr) < n {
		select {
		case l, ok := <-lines:
			if !ok {
				<-r.exited
				t.Fatalf("roost serve exited during startup: %v\n%s", r.err, r.stderr)
			}
			if rest, ok := strings.CutPrefix(l, "listening: "); ok {
				name, addr, _ := strings.Cut(rest, " ")
				r.Addr[name] = addr
			}
			if _, pw, ok := strings.Cut(l, "account demo@example.test with password "); ok {
				r.DemoPassword = strings.Fields(pw)[0]
			}
		case <-deadline:
			t.Fatalf("roost serve did not report its listeners in time\n%s", r.stderr)
		}
	}
	go func() { // keep draining so the server never blocks on stdout
		for range lines {
		}
	}()
	r.waitHealthy(t)
}

func (r *Roost) waitHealthy(t testing.TB) {
	t.Helper()
	url := "http://" + r.Addr["http"] + "/healthz"
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
	}
	t.Fatalf("%s never answered 200\n%s", url, r.stderr)
}

// CLI runs a roost subcommand on the same config and data dir.
func (r *Roost) CLI(t testing.TB, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(r.Bin, append(args, "--config", r.Config)...)
	cmd.Dir = r.Dir
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), out.String(), errb.String()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, out.String(), errb.String()
}

// Stop sends SIGTERM and returns the exit error (nil: exit status 0).
// Calling it again returns the same result.
func (r *Roost) Stop(t testing.TB) error {
	select {
	case <-r.exited:
		return r.err
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(60 * time.Second):
		r.cmd.Process.Kill()
		<-r.exited
		t.Errorf("roost serve ignored SIGTERM for 60s\n%s", r.stderr)
	}
	return r.err
}

// Stderr is the server's log so far.
func (r *Roost) Stderr() string { return r.stderr.String() }

// syncBuffer is a bytes.Buffer safe for the writer goroutine of exec and
// a reading test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var _ io.Writer = (*syncBuffer)(nil)
