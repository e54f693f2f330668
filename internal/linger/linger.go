// Package linger owns the end of a server's TCP connection: the last
// reply reaches the client even when the client has sent more.
//
// A socket closed with unread input makes Linux send a reset (RFC 1122
// section 4.2.2.13) instead of an orderly end, and a client that gets
// the reset before it has read the server's last words (an IMAP BYE, a
// POP3 -ERR) loses them: its next read fails with "connection reset".
// So a server ends a connection the way net/http does after a request
// whose body it did not read: it half-closes its side (the client reads
// everything sent, then end of file), reads and discards what the client
// still sends until the client closes too or Timeout passes, and only
// then closes.
package linger

import (
	"io"
	"net"
	"time"
)

// Timeout bounds how long Close waits for the client to close its side.
const Timeout = time.Second

// maxDrain bounds what Close reads and throws away; a client still
// sending after that is reset.
const maxDrain = 1 << 20

type closeWriter interface{ CloseWrite() error }

// Start ends the output of conn and of raw, the TCP connection under it
// (they are the same without TLS), and bounds every read of raw by
// Timeout, so that a reader blocked on it returns soon. conn's CloseWrite
// (TLS: the close_notify alert) comes first: it still needs the socket.
func Start(conn, raw net.Conn) {
	if conn != raw {
		if cw, ok := conn.(closeWriter); ok {
			_ = cw.CloseWrite()
		}
	}
	if cw, ok := raw.(closeWriter); ok {
		_ = cw.CloseWrite()
	}
	_ = raw.SetReadDeadline(time.Now().Add(Timeout))
}

// Close ends the connection: Start, then discard the client's input
// until it closes (or Timeout, or maxDrain bytes), then close conn.
func Close(conn, raw net.Conn) error {
	Start(conn, raw)
	return drainClose(conn, raw)
}

// CloseLater is Close for a caller that must not wait (go-smtp closes a
// server's connections one after another): the output ends now; the
// draining and the close run on a goroutine of their own.
func CloseLater(conn, raw net.Conn) {
	Start(conn, raw)
	go drainClose(conn, raw) //nolint:errcheck // nobody waits for it
}

// drainClose discards what raw still delivers (to its end, the deadline
// Start set, or maxDrain bytes), then closes conn.
func drainClose(conn, raw net.Conn) error {
	_, _ = io.CopyN(io.Discard, raw, maxDrain)
	return conn.Close()
}
