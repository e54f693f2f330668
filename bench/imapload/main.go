// Command imapload drives any IMAP server with the same mixed workload, so
// Roost and a peer (Dovecot) can be measured side by side in one run.
//
// Each client logs in, SELECTs its mailbox, then loops over a fixed mix of
// FETCH (flags+envelope), STORE, SEARCH, APPEND, EXPUNGE and SELECT until
// the duration ends. It prints commands per second over all clients and
// the 50th and 99th percentile of command latency. The workload is a fixed
// rotation, not random, so two servers get exactly the same command stream.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:1143", "IMAP server address")
	user := flag.String("user", "", "login (or a template with %d for per-client users)")
	pass := flag.String("pass", "", "password")
	clients := flag.Int("clients", 1, "concurrent clients")
	dur := flag.Duration("duration", 10*time.Second, "how long to run")
	mailbox := flag.String("mailbox", "INBOX", "mailbox to work in")
	seed := flag.Int("seed", 200, "messages APPENDed per client before the run")
	first := flag.Int("first", 0, "number of the first client's user (with %d in -user)")
	byCmd := flag.Bool("by-command", false, "also print the mean latency of each step of the rotation")
	flag.Parse()

	var ops atomic.Int64
	var failures atomic.Int64
	var wg sync.WaitGroup
	// Each client records its own latencies; merged after the run.
	lat := make([][]time.Duration, *clients)
	// Per step of the rotation: summed latency and count, per client.
	stepSum := make([][steps]time.Duration, *clients)
	stepN := make([][steps]int, *clients)
	start := make(chan struct{})
	var ready sync.WaitGroup
	for i := range *clients {
		u := *user
		if strings.Contains(u, "%d") {
			u = fmt.Sprintf(u, *first+i)
		}
		wg.Add(1)
		ready.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := dial(*addr)
			if err != nil {
				fmt.Fprintln(os.Stderr, "dial:", err)
				failures.Add(1)
				ready.Done()
				return
			}
			defer c.conn.Close()
			err = c.setup(u, *pass, *mailbox, *seed)
			ready.Done()
			if err != nil {
				fmt.Fprintln(os.Stderr, "setup:", err)
				failures.Add(1)
				return
			}
			<-start
			deadline := time.Now().Add(*dur)
			for n := 0; time.Now().Before(deadline); n++ {
				t := time.Now()
				if err := c.step(n, *mailbox); err != nil {
					fmt.Fprintln(os.Stderr, "step:", err)
					failures.Add(1)
					return
				}
				d := time.Since(t)
				lat[i] = append(lat[i], d)
				stepSum[i][n%steps] += d
				stepN[i][n%steps]++
				ops.Add(1)
			}
			c.cmd("LOGOUT")
		}(i)
	}
	ready.Wait()
	t0 := time.Now()
	close(start)
	wg.Wait()
	el := time.Since(t0)
	all := slices.Concat(lat...)
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[int(p*float64(len(all)-1))].Microseconds()) / 1000
	}
	fmt.Printf("clients=%d commands=%d seconds=%.2f commands_per_sec=%.1f p50_ms=%.2f p99_ms=%.2f failures=%d\n",
		*clients, ops.Load(), el.Seconds(), float64(ops.Load())/el.Seconds(), pct(0.50), pct(0.99), failures.Load())
	if *byCmd {
		for k := range steps {
			var sum time.Duration
			var n int
			for i := range stepSum {
				sum += stepSum[i][k]
				n += stepN[i][k]
			}
			if n > 0 {
				fmt.Printf("  step %d %-32s mean_ms=%.3f n=%d\n", k, stepName(k), float64(sum.Microseconds())/1000/float64(n), n)
			}
		}
	}
	if failures.Load() > 0 {
		os.Exit(1)
	}
}

type client struct {
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	tag  int
}

func dial(addr string) (*client, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	c := &client{conn: conn, r: bufio.NewReader(conn), w: bufio.NewWriter(conn)}
	if _, err := c.r.ReadString('\n'); err != nil { // greeting
		return nil, err
	}
	return c, nil
}

// cmd sends one command (with an optional literal) and reads to its tagged
// reply, skipping untagged data and literals in it.
func (c *client) cmd(line string, literal ...[]byte) (string, error) {
	c.tag++
	tag := fmt.Sprintf("a%d", c.tag)
	if len(literal) > 0 {
		fmt.Fprintf(c.w, "%s %s {%d}\r\n", tag, line, len(literal[0]))
		c.w.Flush()
		l, err := c.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(l, "+") {
			return "", fmt.Errorf("%s: no continuation: %s", line, l)
		}
		c.w.Write(literal[0])
		c.w.WriteString("\r\n")
	} else {
		fmt.Fprintf(c.w, "%s %s\r\n", tag, line)
	}
	if err := c.w.Flush(); err != nil {
		return "", err
	}
	for {
		l, err := c.r.ReadString('\n')
		if err != nil {
			return "", err
		}
		// Skip literal payloads announced at the end of a line.
		for {
			t := strings.TrimRight(l, "\r\n")
			if !strings.HasSuffix(t, "}") {
				break
			}
			i := strings.LastIndexByte(t, '{')
			var n int
			if i < 0 || func() bool { _, err := fmt.Sscanf(t[i:], "{%d}", &n); return err != nil }() {
				break
			}
			buf := make([]byte, n)
			if _, err := ioReadFull(c.r, buf); err != nil {
				return "", err
			}
			l, err = c.r.ReadString('\n')
			if err != nil {
				return "", err
			}
		}
		if strings.HasPrefix(l, tag+" ") {
			if !strings.HasPrefix(l[len(tag)+1:], "OK") {
				return l, fmt.Errorf("%s: %s", line, strings.TrimSpace(l))
			}
			return l, nil
		}
	}
}

func ioReadFull(r *bufio.Reader, buf []byte) (int, error) {
	n := 0
	for n < len(buf) {
		m, err := r.Read(buf[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

func msg(i int) []byte {
	return []byte(fmt.Sprintf("From: Load <load@example.test>\r\nTo: bench@example.test\r\nSubject: load message %d\r\nMessage-ID: <load%d.%d@example.test>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n%s\r\n",
		i, i, time.Now().UnixNano(), strings.Repeat("The quick brown fox jumps over the lazy dog.\r\n", 40)))
}

func (c *client) setup(user, pass, mailbox string, seed int) error {
	if _, err := c.cmd(fmt.Sprintf("LOGIN %q %q", user, pass)); err != nil {
		return err
	}
	for i := range seed {
		if _, err := c.cmd("APPEND "+mailbox+" ()", msg(i)); err != nil {
			return err
		}
	}
	_, err := c.cmd("SELECT " + mailbox)
	return err
}

// steps is the length of the fixed rotation step runs.
const steps = 10

// stepName names the command of step k of the rotation, for -by-command.
func stepName(k int) string {
	return [steps]string{"FETCH 1:20 (FLAGS ENVELOPE)", "FETCH 1:20 (FLAGS ENVELOPE)", "FETCH 1:20 (FLAGS ENVELOPE)",
		"STORE n +FLAGS (\\Seen)", "STORE n +FLAGS (\\Seen)", "SEARCH UNSEEN SUBJECT", "APPEND",
		"STORE 1 +FLAGS (\\Deleted)", "EXPUNGE", "SELECT"}[k]
}

// step runs the n-th command of the fixed rotation.
func (c *client) step(n int, mailbox string) error {
	var err error
	switch n % steps {
	case 0, 1, 2:
		_, err = c.cmd("FETCH 1:20 (FLAGS ENVELOPE)")
	case 3, 4:
		_, err = c.cmd(fmt.Sprintf("STORE %d +FLAGS (\\Seen)", n%20+1))
	case 5:
		_, err = c.cmd("SEARCH UNSEEN SUBJECT \"load\"")
	case 6:
		_, err = c.cmd("APPEND "+mailbox+" ()", msg(n))
	case 7:
		_, err = c.cmd("STORE 1 +FLAGS (\\Deleted)")
	case 8:
		_, err = c.cmd("EXPUNGE")
	case 9:
		_, err = c.cmd("SELECT " + mailbox)
	}
	return err
}
