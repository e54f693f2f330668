package pop3server

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// needTool finds an external program; without it the test fails in CI and
// is skipped elsewhere.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI but not installed: %v", name, err)
		}
		t.Skipf("%s not installed: %v", name, err)
	}
	return p
}

type poplibResult struct {
	Welcome    string   `json:"welcome"`
	CapsBefore []string `json:"caps_before"`
	Caps       []string `json:"caps"`
	Stat       [2]int64 `json:"stat"`
	List       []string `json:"list"`
	UIDL       []string `json:"uidl"`
	Messages   []struct {
		Octets   int64  `json:"octets"`
		Text     string `json:"text"`
		TopLines int    `json:"top_lines"`
	} `json:"messages"`
	Quit string `json:"quit"`
}

func TestPoplib(t *testing.T) {
	python := needTool(t, "python3")
	serverTLS, _ := selfSigned(t)
	cafile := filepath.Join(t.TempDir(), "ca.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: serverTLS.Certificates[0].Certificate[0]})
	if err := os.WriteFile(cafile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	raws := []string{
		"From: bob@example.net\r\nSubject: first\r\n\r\nHello Alice\r\n.\r\nBye\r\n",
		"From: carol@example.net\nSubject: second, bare LF\n\n..dots\nno final line end",
	}
	for _, mode := range []string{"plain", "stls", "ssl"} {
		t.Run(mode, func(t *testing.T) {
			e := newEnv(t, withConfig(func(c *Config) { c.TLS = serverTLS }))
			a := e.account("alice@example.org")
			e.deliver(a, raws...)
			inbox := e.mailbox(a, "INBOX")
			addr := e.addr
			if mode != "plain" {
				// From "the network": TLS is what makes login possible.
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				e.serve(remoteListener{ln}, mode == "ssl")
				addr = ln.Addr().String()
			}
			host, port, _ := net.SplitHostPort(addr)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, python, "testdata/poplib_client.py", mode, host, port, a.Name, testPassword, cafile)
			out, err := cmd.Output()
			if err != nil {
				var stderr string
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = string(ee.Stderr)
				}
				t.Fatalf("poplib: %v\n%s", err, stderr)
			}
			var res poplibResult
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("poplib output %q: %v", out, err)
			}
			if res.Welcome != "+OK pop.example.test Roost POP3 server ready" {
				t.Errorf("welcome %q", res.Welcome)
			}
			for _, c := range []string{"TOP", "UIDL", "USER", "PIPELINING", "RESP-CODES"} {
				if !slices.Contains(res.Caps, c) {
					t.Errorf("caps %v lack %s", res.Caps, c)
				}
			}
			if mode == "stls" && (!slices.Contains(res.CapsBefore, "STLS") || slices.Contains(res.CapsBefore, "USER")) {
				t.Errorf("caps before STLS %v", res.CapsBefore)
			}
			var total int64
			for i, m := range res.Messages {
				want := strings.ReplaceAll(strings.ReplaceAll(raws[i], "\r\n", "\n"), "\n", "\r\n")
				if !strings.HasSuffix(want, "\r\n") {
					want += "\r\n"
				}
				if m.Text != want {
					t.Errorf("message %d: poplib got %q, want %q", i+1, m.Text, want)
				}
				if m.Octets != int64(len(want)) {
					t.Errorf("message %d: poplib counted %d octets, want %d", i+1, m.Octets, len(want))
				}
				if wantList := fmt.Sprintf("%d %d", i+1, m.Octets); res.List[i] != wantList {
					t.Errorf("LIST %q, RETR sent %q", res.List[i], wantList)
				}
				if wantUIDL := fmt.Sprintf("%d %d.%d", i+1, inbox.UIDValidity, i+1); res.UIDL[i] != wantUIDL {
					t.Errorf("UIDL %q, want %q", res.UIDL[i], wantUIDL)
				}
				if m.TopLines != 3 {
					t.Errorf("TOP %d 0 gave %d lines, want 3 (2 header lines and the blank line)", i+1, m.TopLines)
				}
				total += m.Octets
			}
			if res.Stat != [2]int64{int64(len(raws)), total} {
				t.Errorf("STAT %v, want [%d %d]", res.Stat, len(raws), total)
			}
			if !strings.HasPrefix(res.Quit, "+OK") {
				t.Errorf("QUIT %q", res.Quit)
			}
			if got := e.uids(a, "INBOX"); !slices.Equal(got, []mailstore.UID{2}) {
				t.Errorf("INBOX after poplib's DELE 1 and QUIT: %v", got)
			}
		})
	}
}
