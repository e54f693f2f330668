package linger

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
)

// TestCloseKeepsLastReply: a client pipelines more than the server reads;
// the server answers the first line and ends the connection. With Close
// the client reads the answer and then end of file; with a plain Close
// of the socket the unread input turns the end into a reset.
func TestCloseKeepsLastReply(t *testing.T) {
	for _, c := range []struct {
		name  string
		close func(net.Conn) error
		reset bool
	}{
		{"linger", func(c net.Conn) error { return Close(c, c) }, false},
		{"later", func(c net.Conn) error { CloseLater(c, c); return nil }, false},
		{"plain", func(c net.Conn) error { return c.Close() }, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := exchange(t, c.close)
			if !c.reset {
				if err != nil || got != "* BYE done\r\n" {
					t.Fatalf("client read %q, %v; want the BYE and end of file", got, err)
				}
				return
			}
			// Shows the test can fail: the reset is what Close avoids.
			if err == nil || !strings.Contains(err.Error(), "reset") {
				t.Fatalf("plain close: client read %q, %v; want a reset", got, err)
			}
		})
	}
}

// exchange runs one connection: the client sends a line and 64 KB more at
// once, the server reads the line, answers and ends with closeFn. It
// returns what the client read and how its reading ended (nil: EOF).
func exchange(t *testing.T, closeFn func(net.Conn) error) (string, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			done <- err
			return
		}
		if _, err := c.Write([]byte("* BYE done\r\n")); err != nil {
			done <- err
			return
		}
		done <- closeFn(c)
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("a LOGOUT\r\n" + strings.Repeat("x", 64<<10))); err != nil {
		t.Fatal(err)
	}
	// Like a real client: read to the end, then close.
	b, err := io.ReadAll(c)
	c.Close()
	if err := <-done; err != nil {
		t.Logf("server: %v", err)
	}
	return string(b), err
}
