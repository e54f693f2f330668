package integration

import (
	"bufio"
	"fmt"
	"net"
	"net/smtp"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2/imapclient"
)

// POP3 against the real binary, driven by fetchmail, curl and an IMAP
// client (go-imap) watching the same INBOX. Helpers carry a pop3 prefix:
// the package is shared with other protocols' tests.

const pop3Password = "pop3 secret"

// pop3Tool finds an external client: required in CI (.ci/run installs
// the Debian packages fetchmail and curl), skipped elsewhere.
func pop3Tool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI but not installed: %v", name, err)
		}
		t.Skipf("%s not installed (apt-get install %s): %v", name, name, err)
	}
	return p
}

// pop3Setup starts roost with extraTOML, adds alice@example.org and
// delivers the given subjects to her over SMTP (the MX listener).
func pop3Setup(t *testing.T, extraTOML string, subjects ...string) *Roost {
	t.Helper()
	r := StartRoost(t, BuildRoost(t), extraTOML)
	if code, _, errs := r.CLI(t, "", "domain", "add", "example.org"); code != 0 {
		t.Fatalf("domain add: %s", errs)
	}
	if code, _, errs := r.CLI(t, pop3Password+"\n", "user", "add", "alice@example.org", "--password-stdin"); code != 0 {
		t.Fatalf("user add: %s", errs)
	}
	for _, s := range subjects {
		pop3Deliver(t, r.Addr["smtp"], s)
	}
	return r
}

func pop3Deliver(t *testing.T, addr, subject string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatalf("smtp dial: %v", err)
	}
	defer c.Close()
	msg := "From: bob@example.net\r\nTo: alice@example.org\r\nSubject: " + subject +
		"\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@example.net>\r\n\r\nHello from " + subject + "\r\n.starts with a dot\r\n"
	steps := []func() error{
		func() error { return c.Hello("client.example.net") },
		func() error { return c.Mail("bob@example.net") },
		func() error { return c.Rcpt("alice@example.org") },
		func() error {
			w, err := c.Data()
			if err != nil {
				return err
			}
			if _, err := w.Write([]byte(msg)); err != nil {
				return err
			}
			return w.Close()
		},
		c.Quit,
	}
	for _, f := range steps {
		if err := f(); err != nil {
			t.Fatalf("deliver %q: %v", subject, err)
		}
	}
}

// pop3Stat logs in over plain POP3 on loopback and returns STAT's answer.
func pop3Stat(t *testing.T, addr, user string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	var last string
	for _, cmd := range []string{"", "USER " + user, "PASS " + pop3Password, "STAT", "QUIT"} {
		if cmd != "" {
			fmt.Fprintf(c, "%s\r\n", cmd)
		}
		l, err := br.ReadString('\n')
		if err != nil || !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 %q: %q %v", cmd, l, err)
		}
		if strings.HasPrefix(cmd, "STAT") {
			last = strings.TrimSpace(l)
		}
	}
	return last
}

// pop3Fetchmail runs fetchmail once for user and returns its exit code
// (0: mail fetched, 1: no mail) and what it delivered.
// dir holds the rc file, fetchmail's UIDL memory and the mbox; reuse it
// for runs that must remember what they fetched.
func pop3Fetchmail(t *testing.T, fetchmail, dir, addr, serverOptions, user, options string) (int, string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	mbox := filepath.Join(dir, "fetched.mbox")
	rc := filepath.Join(dir, "fetchmailrc")
	conf := fmt.Sprintf("set no syslog\npoll %s service %s protocol pop3 timeout 10 %s\n  user %q password %q %s sslproto \"\" mda \"cat >> %s\"\n",
		host, port, serverOptions, user, pop3Password, options, mbox)
	if err := os.WriteFile(rc, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(fetchmail, "-f", rc, "-v", "--nodetach", "-i", filepath.Join(dir, "fetchids"))
	cmd.Env = append(os.Environ(), "HOME="+dir, "FETCHMAILHOME="+dir)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code > 1 {
		t.Fatalf("fetchmail exit %d:\n%s", code, out)
	}
	got, _ := os.ReadFile(mbox)
	return code, string(got)
}

func TestPOP3Fetchmail(t *testing.T) {
	fetchmail := pop3Tool(t, "fetchmail")
	r := pop3Setup(t, "", "first message", "second message")
	addr := r.Addr["pop3"]

	// A device view: fetchmail downloads and deletes, which only hides
	// the mail from this device.
	code, got := pop3Fetchmail(t, fetchmail, t.TempDir(), addr, "", "alice@example.org#desktop", "fetchall")
	if code != 0 || !strings.Contains(got, "Subject: first message") || !strings.Contains(got, "Subject: second message") {
		t.Fatalf("fetchmail (device view): exit %d, fetched %q", code, got)
	}
	if !strings.Contains(got, "\n.starts with a dot") {
		t.Errorf("dot-stuffing not undone: %q", got)
	}
	if code, got := pop3Fetchmail(t, fetchmail, t.TempDir(), addr, "", "alice@example.org#desktop", "fetchall"); code != 1 {
		t.Fatalf("second fetchmail run on the same device: exit %d, fetched %q", code, got)
	}
	if s := pop3Stat(t, addr, "alice@example.org#phone"); !strings.HasPrefix(s, "+OK 2 ") {
		t.Fatalf("another device after fetchmail: %s", s)
	}

	// keep + uidl: a classic "leave on server" set-up fetches new mail only.
	keepDir := t.TempDir()
	if code, got := pop3Fetchmail(t, fetchmail, keepDir, addr, "uidl", "alice@example.org", "keep"); code != 0 || strings.Count(got, "Subject: ") != 2 {
		t.Fatalf("fetchmail keep uidl: exit %d, fetched %q", code, got)
	}
	pop3Deliver(t, r.Addr["smtp"], "third message")
	if code, got := pop3Fetchmail(t, fetchmail, keepDir, addr, "uidl", "alice@example.org", "keep"); code != 0 || strings.Count(got, "Subject: ") != 3 || !strings.Contains(got, "Subject: third message") {
		t.Fatalf("fetchmail keep uidl, second run (new mail only): exit %d, mbox %q", code, got)
	}
	if code, _ := pop3Fetchmail(t, fetchmail, keepDir, addr, "uidl", "alice@example.org", "keep"); code != 1 {
		t.Fatalf("fetchmail keep uidl, third run: exit %d, want 1 (no new mail)", code)
	}

	// The account's own view in expunge mode: mail leaves INBOX.
	code, got = pop3Fetchmail(t, fetchmail, t.TempDir(), addr, "", "alice@example.org", "fetchall")
	if code != 0 || strings.Count(got, "Subject: ") != 3 {
		t.Fatalf("fetchmail (own view): exit %d, fetched %q", code, got)
	}
	if s := pop3Stat(t, addr, "alice@example.org#phone"); s != "+OK 0 0" {
		t.Fatalf("after expunge mode DELE: %s", s)
	}
}

func pop3Curl(t *testing.T, curl string, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(curl, append([]string{"-s", "-S", "--max-time", "30"}, args...)...)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), string(out)
	} else if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestPOP3Curl(t *testing.T) {
	curl := pop3Tool(t, "curl")
	r := pop3Setup(t, `[pop3]
delete = "hide"
`, "first message", "second message")
	user := "alice@example.org:" + pop3Password
	plain, pop3s := "pop3://"+r.Addr["pop3"], "pop3s://"+r.Addr["pop3s"]

	code, list := pop3Curl(t, curl, "-u", user, plain+"/")
	lines := strings.Split(strings.TrimSpace(list), "\r\n")
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "1 ") || !strings.HasPrefix(lines[1], "2 ") {
		t.Fatalf("curl LIST: exit %d, %q", code, list)
	}
	var size int
	fmt.Sscanf(lines[0], "1 %d", &size)
	code, m1 := pop3Curl(t, curl, "-u", user, plain+"/1")
	if code != 0 || !strings.Contains(m1, "Subject: first message") || len(m1) != size {
		t.Fatalf("curl RETR 1: exit %d, %d octets (LIST said %d): %q", code, len(m1), size, m1)
	}
	// Implicit TLS and STLS (self-signed certificate: -k).
	if code, m := pop3Curl(t, curl, "-k", "-u", user, pop3s+"/1"); code != 0 || m != m1 {
		t.Fatalf("curl over pop3s: exit %d, %q", code, m)
	}
	if code, m := pop3Curl(t, curl, "-k", "--ssl-reqd", "-u", user, plain+"/1"); code != 0 || m != m1 {
		t.Fatalf("curl with STLS: exit %d, %q", code, m)
	}
	// SASL PLAIN with an initial response.
	if code, m := pop3Curl(t, curl, "--sasl-ir", "--login-options", "AUTH=PLAIN", "-u", user, plain+"/1"); code != 0 || m != m1 {
		t.Fatalf("curl AUTH PLAIN: exit %d, %q", code, m)
	}
	// curl exits 67 when the login is refused.
	if code, _ := pop3Curl(t, curl, "-u", "alice@example.org:wrong", plain+"/"); code != 67 {
		t.Fatalf("wrong password: curl exit %d, want 67", code)
	}
	// DELE then QUIT (curl always ends with QUIT): hide mode.
	if code, out := pop3Curl(t, curl, "-u", user, "-X", "DELE", "-I", plain+"/1"); code != 0 {
		t.Fatalf("curl DELE: exit %d %q", code, out)
	}
	if s := pop3Stat(t, r.Addr["pop3"], "alice@example.org"); !strings.HasPrefix(s, "+OK 1 ") {
		t.Fatalf("after DELE in hide mode: %s", s)
	}
	// Hidden from POP3, still in INBOX for IMAP and for device views.
	if s := pop3Stat(t, r.Addr["pop3"], "alice@example.org#phone"); !strings.HasPrefix(s, "+OK 2 ") {
		t.Fatalf("device view after hide: %s", s)
	}
	c, err := imapclient.DialInsecure(r.Addr["imap"], nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org", pop3Password).Wait(); err != nil {
		t.Fatal(err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if sel.NumMessages != 2 {
		t.Fatalf("IMAP INBOX has %d messages after POP3 hide, want 2", sel.NumMessages)
	}
	c.Logout().Wait()
}

// TestPOP3ExpungeReachesIMAPIdle: a POP3 QUIT in expunge mode reaches an
// IMAP session in IDLE at once.
func TestPOP3ExpungeReachesIMAPIdle(t *testing.T) {
	r := pop3Setup(t, "", "first message", "second message")
	expunged := make(chan uint32, 4)
	c, err := imapclient.DialInsecure(r.Addr["imap"], &imapclient.Options{
		UnilateralDataHandler: &imapclient.UnilateralDataHandler{
			Expunge: func(seq uint32) { expunged <- seq },
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.org", pop3Password).Wait(); err != nil {
		t.Fatal(err)
	}
	if sel, err := c.Select("INBOX", nil).Wait(); err != nil || sel.NumMessages != 2 {
		t.Fatalf("SELECT: %v %+v", err, sel)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}

	p, err := net.DialTimeout("tcp", r.Addr["pop3"], 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(p)
	for _, cmd := range []string{"", "USER alice@example.org", "PASS " + pop3Password, "DELE 1"} {
		if cmd != "" {
			fmt.Fprintf(p, "%s\r\n", cmd)
		}
		if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
			t.Fatalf("POP3 %q: %q %v", cmd, l, err)
		}
	}
	select {
	case seq := <-expunged:
		t.Fatalf("EXPUNGE %d before POP3 QUIT", seq)
	case <-time.After(300 * time.Millisecond):
	}
	fmt.Fprintf(p, "QUIT\r\n")
	if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
		t.Fatalf("POP3 QUIT: %q %v", l, err)
	}
	select {
	case seq := <-expunged:
		if seq != 1 {
			t.Fatalf("EXPUNGE %d, want 1", seq)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("IMAP IDLE saw no EXPUNGE after POP3 QUIT")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
	c.Logout().Wait()
}
