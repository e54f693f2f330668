// Command smtpload sends the SMTP benchmarks' 10 KB messages
// (internal/benchmail) to any SMTP server: a number of concurrent clients,
// each on one connection, sending until a total is reached. It prints one
// line: messages sent, seconds, and messages per second. The same load
// against two servers on one machine gives a ratio that the machine's
// speed mostly cancels out of (bench/mx-vs-postfix.sh).
package main

import (
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/benchmail"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:25", "SMTP server address")
	clients := flag.Int("clients", 16, "concurrent clients, one connection each")
	total := flag.Int("n", 4000, "messages to send in all")
	rcpts := flag.Int("rcpts", 1, "recipients per message")
	to := flag.String("to", "u%d@x.test", "recipient template; %d numbers the recipients from 0")
	from := flag.String("from", "s@remote.test", "envelope sender")
	flag.Parse()
	if err := run(*addr, *clients, *total, *rcpts, *to, *from); err != nil {
		fmt.Fprintln(os.Stderr, "smtpload:", err)
		os.Exit(1)
	}
}

func run(addr string, clients, total, nrcpt int, toTmpl, from string) error {
	var to []string
	for i := range nrcpt {
		to = append(to, strings.ReplaceAll(toTmpl, "%d", fmt.Sprint(i)))
	}
	msgs := make([]string, 256)
	for i := range msgs {
		msgs[i] = benchmail.Message(i, from, to[0])
	}
	conns := make([]*smtp.Client, clients)
	for i := range conns {
		c, err := smtp.Dial(addr)
		if err != nil {
			return fmt.Errorf("connect %d: %w", i, err)
		}
		if err := c.Hello("load.test"); err != nil {
			return fmt.Errorf("EHLO %d: %w", i, err)
		}
		conns[i] = c
	}
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	start := time.Now()
	for _, c := range conns {
		wg.Add(1)
		go func(c *smtp.Client) {
			defer wg.Done()
			for failed.Load() == nil {
				i := next.Add(1)
				if i > int64(total) {
					return
				}
				if err := c.SendMail(from, to, strings.NewReader(msgs[i%int64(len(msgs))])); err != nil {
					err = fmt.Errorf("message %d: %w", i, err)
					failed.CompareAndSwap(nil, &err)
					return
				}
			}
		}(c)
	}
	wg.Wait()
	el := time.Since(start)
	for _, c := range conns {
		c.Quit()
	}
	if p := failed.Load(); p != nil {
		return *p
	}
	fmt.Printf("sent=%d seconds=%.3f msgs_per_sec=%.1f\n", total, el.Seconds(), float64(total)/el.Seconds())
	return nil
}
