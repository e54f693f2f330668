package queue

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeMX is a minimal line-based SMTP server for replies go-smtp's sink
// cannot give (a 4xx to MAIL, a 421 that drops the connection, a slow
// reply to the final dot). It greets with 220, answers EHLO with 250 and
// no extensions, MAIL with mailReply, each RCPT with rcptReplies[address]
// or else rcptReply, and DATA with 354, then 250 after dataDelay.
type fakeMX struct {
	ln                   net.Listener
	mailReply, rcptReply string
	rcptReplies          map[string]string
	dataDelay            time.Duration
	// msgs counts messages received whole (up to the final dot): a
	// message counts as sent even if its sender gives up on the reply.
	msgs, conns atomic.Int32

	mu    sync.Mutex
	rcpts [][]string // accepted recipients of each message received
}

// startFakeMX starts a fakeMX on addr; set its optional fields before the
// first connection.
func startFakeMX(t testing.TB, addr, mailReply, rcptReply string) *fakeMX {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMX{ln: ln, mailReply: mailReply, rcptReply: rcptReply}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			go f.serve(c)
		}
	}()
	return f
}

// received is the accepted recipients of each message received.
func (f *fakeMX) received() [][]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]string(nil), f.rcpts...)
}

func (f *fakeMX) serve(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	say := func(s string) { c.Write([]byte(s + "\r\n")) }
	var rcpts []string
	say("220 fake.test ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.TrimSpace(line)
		upper := strings.ToUpper(cmd)
		switch {
		case strings.HasPrefix(upper, "EHLO"), strings.HasPrefix(upper, "HELO"):
			say("250 fake.test")
		case strings.HasPrefix(upper, "MAIL"):
			rcpts = nil
			say(f.mailReply)
			if strings.HasPrefix(f.mailReply, "421") {
				return
			}
		case strings.HasPrefix(upper, "RCPT"):
			addr := strings.TrimSuffix(strings.TrimPrefix(cmd[len("RCPT TO:"):], "<"), ">")
			rep, ok := f.rcptReplies[addr]
			if !ok {
				rep = f.rcptReply
			}
			if strings.HasPrefix(rep, "2") {
				rcpts = append(rcpts, addr)
			}
			say(rep)
		case upper == "DATA":
			say("354 go")
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if l == ".\r\n" {
					break
				}
			}
			f.msgs.Add(1)
			f.mu.Lock()
			f.rcpts = append(f.rcpts, rcpts)
			f.mu.Unlock()
			time.Sleep(f.dataDelay)
			say("250 queued")
		case upper == "RSET", upper == "NOOP":
			say("250 ok")
		case upper == "QUIT":
			say("221 bye")
			return
		default:
			say("500 what")
		}
	}
}
