package integration

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// imapLogin logs in over plain IMAP on loopback (allowed there) and
// returns the tagged reply line.
func imapLogin(t *testing.T, addr, user, pw string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	if g, _ := br.ReadString('\n'); !strings.HasPrefix(g, "* OK") {
		t.Fatalf("IMAP greeting %q", g)
	}
	fmt.Fprintf(c, "a1 LOGIN %q %q\r\n", user, pw)
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("IMAP LOGIN: %v", err)
		}
		if strings.HasPrefix(line, "a1 ") {
			fmt.Fprintf(c, "a2 LOGOUT\r\n")
			return strings.TrimSpace(line)
		}
	}
}

func TestServeCLIAndSignals(t *testing.T) {
	bin := BuildRoost(t)
	r := StartRoost(t, bin, "")
	if r.DemoPassword == "" {
		t.Fatal("a fresh store did not print the demo password")
	}

	resp, err := http.Get("http://" + r.Addr["http"] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"roost_build_info{", "roost_store_up 1", "go_goroutines", "process_open_fds"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}

	// The CLI works on the live store.
	if code, _, errs := r.CLI(t, "", "domain", "add", "example.org"); code != 0 {
		t.Fatalf("domain add: %s", errs)
	}
	if code, _, errs := r.CLI(t, "bob's pw\n", "user", "add", "bob@example.org", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	code, out, errs := r.CLI(t, "", "user", "list")
	if code != 0 || !strings.Contains(out, "bob@example.org\t") || !strings.Contains(out, "demo@example.test\t") {
		t.Fatalf("user list: %d %q %s", code, out, errs)
	}
	// ...and the running server sees what the CLI did, at once.
	if got := imapLogin(t, r.Addr["imap"], "bob@example.org", "bob's pw"); !strings.HasPrefix(got, "a1 OK") {
		t.Fatalf("login of a user added by the CLI: %q", got)
	}
	if got := imapLogin(t, r.Addr["imap"], "demo@example.test", r.DemoPassword); !strings.HasPrefix(got, "a1 OK") {
		t.Fatalf("demo login: %q", got)
	}
	if code, _, errs := r.CLI(t, "new pw\n", "user", "passwd", "bob@example.org", "--password-stdin"); code != 0 {
		t.Fatalf("passwd: %s", errs)
	}
	if got := imapLogin(t, r.Addr["imap"], "bob@example.org", "bob's pw"); !strings.HasPrefix(got, "a1 NO") {
		t.Fatalf("old password still works after passwd: %q", got)
	}

	// Many CLI writers while the server also writes (logins do not write,
	// so add users): SQLite's busy timeout serialises the processes.
	var wg sync.WaitGroup
	errsC := make(chan string, 8)
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _, errs := r.CLI(t, "pw\n", "user", "add", fmt.Sprintf("u%d@example.org", i), "--password-stdin"); code != 0 {
				errsC <- errs
			}
		}()
	}
	wg.Wait()
	close(errsC)
	for e := range errsC {
		t.Errorf("concurrent user add: %s", e)
	}

	if err := r.Stop(t); err != nil {
		t.Fatalf("SIGTERM: %v (want exit 0)\n%s", err, r.Stderr())
	}
	if !strings.Contains(r.Stderr(), "msg=stopped") {
		t.Fatalf("no orderly stop in the log:\n%s", r.Stderr())
	}
	for name, addr := range r.Addr {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepting after exit", name)
		}
	}

}

func TestRestartKeepsStore(t *testing.T) {
	bin := BuildRoost(t)
	r := StartRoost(t, bin, "")
	if err := r.Stop(t); err != nil {
		t.Fatal(err)
	}
	// Same config, same data dir, started by hand.
	cmd := exec.Command(bin, "serve", "--config", r.Config)
	cmd.Dir = r.Dir
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var sawListening bool
	for sc.Scan() {
		l := sc.Text()
		if strings.Contains(l, "password") {
			t.Errorf("restart printed a password again: %q", l)
		}
		if strings.HasPrefix(l, "listening: http ") {
			sawListening = true
			break
		}
	}
	cmd.Process.Signal(os.Interrupt) // SIGINT, like ^C
	go io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil || !sawListening {
		t.Fatalf("restart: listening %v, exit %v", sawListening, err)
	}
}

func TestBadConfig(t *testing.T) {
	bin := BuildRoost(t)
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	os.WriteFile(bad, []byte("hostname = \"x.test\"\n\n[pop3]\ndelete = \"hide\"\nexpunge_after = 3\n"), 0o600)
	for _, args := range [][]string{{"config", "check"}, {"serve"}, {"user", "list"}} {
		cmd := exec.Command(bin, append(args, "--config", bad)...)
		cmd.Dir = dir
		var errb strings.Builder
		cmd.Stderr = &errb
		err := cmd.Run()
		ee, ok := err.(*exec.ExitError)
		if !ok || ee.ExitCode() == 0 {
			t.Fatalf("roost %v with an unknown key: %v", args, err)
		}
		if got := errb.String(); !strings.Contains(got, `line 5: unknown key "pop3.expunge_after"`) || strings.Count(got, "\n") != 1 {
			t.Fatalf("roost %v stderr %q", args, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "roost-data")); err == nil {
		t.Fatal("a failed start created the data dir")
	}
}
