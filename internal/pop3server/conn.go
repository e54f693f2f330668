package pop3server

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/linger"
	"github.com/roost-mail/roost/internal/mailstore"
)

// state is the POP3 session state (RFC 1939 section 3). UPDATE is not a
// state a session waits in: QUIT in TRANSACTION runs it and ends the
// session.
type state uint8

const (
	stateAuthorization state = iota
	stateTransaction
)

// handshakeTimeout bounds a TLS handshake (implicit TLS or STLS).
const handshakeTimeout = 30 * time.Second

// maxAuthFailures ends a session after that many failed logins; the
// authenticator's delay already slows each one down.
const maxAuthFailures = 3

// session is one client connection.
type session struct {
	srv *Server
	log *slog.Logger
	// id is unique per session across nodes: the owner of its leases.
	id string

	raw      net.Conn // the TCP connection
	nc       net.Conn // raw, or the TLS connection over it; guarded by srv.mu while swapped
	r        *bufio.Reader
	w        *bufio.Writer
	isTLS    bool
	loopback bool

	state     state
	user      string // USER's argument, waiting for PASS
	authFails int
	done      bool

	drop *maildrop // in TRANSACTION state
}

func newSession(srv *Server, nc net.Conn, implicitTLS bool) *session {
	var b [8]byte
	rand.Read(b[:])
	s := &session{
		srv:      srv,
		id:       srv.node + "/" + hex.EncodeToString(b[:]),
		raw:      nc,
		nc:       nc,
		loopback: isLoopback(nc.RemoteAddr()),
		isTLS:    implicitTLS,
	}
	s.log = srv.log.With("session", s.id, "remote", nc.RemoteAddr().String())
	return s
}

func isLoopback(a net.Addr) bool {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.IP.IsLoopback()
	case *net.UnixAddr:
		return true
	}
	return false
}

// deadlineWriter gives every write to the connection its own deadline, so
// a client that stops reading is dropped after the idle timeout while a
// long RETR to a slow but live client goes on.
type deadlineWriter struct {
	c net.Conn
	d time.Duration
}

func (w deadlineWriter) Write(p []byte) (int, error) {
	w.c.SetWriteDeadline(time.Now().Add(w.d))
	return w.c.Write(p)
}

func (s *session) setConn(nc net.Conn) {
	s.srv.mu.Lock()
	s.nc = nc
	s.srv.mu.Unlock()
	s.r = bufio.NewReaderSize(nc, maxLine)
	s.w = bufio.NewWriterSize(deadlineWriter{nc, s.srv.cfg.IdleTimeout}, 64<<10)
}

// interrupt wakes a session blocked reading a command; called under
// srv.mu by Shutdown.
func (s *session) interrupt() {
	s.nc.SetReadDeadline(time.Now())
}

// forceClose drops the connection; called under srv.mu.
func (s *session) forceClose() {
	s.nc.Close()
}

func (s *session) run() {
	defer func() {
		if s.drop != nil {
			s.drop.close()
		}
		// The client reads our last reply even if it sent more.
		linger.Close(s.nc, s.raw)
	}()
	s.setConn(s.raw)
	if s.isTLS {
		tc := tls.Server(s.raw, s.srv.cfg.TLS)
		if err := s.handshake(tc); err != nil {
			s.log.Info("TLS handshake failed", "err", err)
			return
		}
		s.setConn(tc)
	}
	// RFC 1939 section 4: the greeting is a positive response. There is
	// no timestamp: APOP is not offered (RFC 1939 section 7, APOP).
	s.ok("%s Roost POP3 server ready", s.srv.cfg.Hostname)
	for !s.done {
		if s.srv.isClosing() {
			s.shutdownReply()
			return
		}
		// RFC 2449 section 6.6 (PIPELINING): answers to commands that
		// arrived together are sent together; flush only when no further
		// command is waiting.
		if s.r.Buffered() == 0 {
			if err := s.w.Flush(); err != nil {
				return
			}
		}
		line, err := s.readLine()
		if errors.Is(err, errLineTooLong) {
			s.err("Line too long")
			continue
		}
		if err != nil {
			s.readFailed(err)
			return
		}
		cmd, err := parseCommand(line)
		if err != nil {
			s.reply(syntaxError("Malformed command"))
			continue
		}
		if s.drop != nil {
			if err := s.drop.renew(s.ctx()); err != nil {
				// The maildrop lock is gone (store failure or another
				// node took it after expiry): the session cannot go on
				// safely. No UPDATE happens (RFC 1939 section 6).
				s.reply(err)
				s.w.Flush()
				return
			}
		}
		s.dispatch(cmd)
	}
	s.w.Flush()
}

// readFailed ends the session after a failed read: the client went away,
// the autologout timer expired, or the server is shutting down.
func (s *session) readFailed(err error) {
	s.done = true
	var ne net.Error
	switch {
	case errors.Is(err, errShuttingDown), errors.As(err, &ne) && ne.Timeout() && s.srv.isClosing():
		s.shutdownReply()
	case errors.As(err, &ne) && ne.Timeout():
		// RFC 1939 section 3: when the autologout timer expires "the
		// session does NOT enter the UPDATE state--the server should
		// close the TCP connection without removing any messages or
		// sending any response to the client".
		s.log.Debug("autologout")
	case !errors.Is(err, io.EOF):
		s.log.Debug("read failed", "err", err)
	}
}

// shutdownReply is the last word of a session the server stops.
func (s *session) shutdownReply() {
	s.err("[SYS/TEMP] Server shutting down, try again later")
	s.w.Flush()
}

var (
	errLineTooLong  = errors.New("line too long")
	errShuttingDown = errors.New("server shutting down")
)

// readLine reads one line without its line end. The idle timer restarts
// for each line. A line longer than maxLine is read to its end and
// discarded (errLineTooLong), so the session can go on.
func (s *session) readLine() (string, error) {
	if err := s.armRead(); err != nil {
		return "", err
	}
	line, err := s.r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = s.r.ReadSlice('\n')
		}
		if err != nil {
			return "", err
		}
		return "", errLineTooLong
	}
	if err != nil {
		// A partial line at EOF is no command.
		return "", err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return string(line), nil
}

// armRead starts the autologout timer for the next read. It holds srv.mu
// so that Shutdown's interrupt cannot be overwritten by a later deadline.
func (s *session) armRead() error {
	s.srv.mu.Lock()
	defer s.srv.mu.Unlock()
	if s.srv.closing {
		return errShuttingDown
	}
	return s.nc.SetReadDeadline(time.Now().Add(s.srv.cfg.IdleTimeout))
}

func (s *session) handshake(tc *tls.Conn) error {
	ctx, cancel := context.WithTimeout(s.srv.ctx, handshakeTimeout)
	defer cancel()
	if err := tc.HandshakeContext(ctx); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	return nil
}

func (s *session) ctx() context.Context { return s.srv.ctx }

// ok writes a single-line positive response (RFC 1939 section 3).
func (s *session) ok(format string, args ...any) {
	s.w.WriteString("+OK")
	if format != "" {
		s.w.WriteByte(' ')
		fmt.Fprintf(s.w, format, args...)
	}
	s.w.WriteString("\r\n")
}

// err writes a negative response with text meant for the client.
func (s *session) err(text string) {
	s.w.WriteString("-ERR ")
	s.w.WriteString(text)
	s.w.WriteString("\r\n")
}

// line writes one line of a multi-line response, dot-stuffed (RFC 1939
// section 3).
func (s *session) line(text string) {
	if strings.HasPrefix(text, ".") {
		s.w.WriteByte('.')
	}
	s.w.WriteString(text)
	s.w.WriteString("\r\n")
}

// end terminates a multi-line response.
func (s *session) end() { s.w.WriteString(".\r\n") }

// replyError is an error whose text (and response code) is written to the
// client as is.
type replyError struct {
	code string // RFC 2449 section 8 response code without brackets, or ""
	text string
}

func (e *replyError) Error() string {
	if e.code == "" {
		return e.text
	}
	return "[" + e.code + "] " + e.text
}

func syntaxError(text string) error { return &replyError{text: text} }

// Errors with fixed replies.
var (
	// RFC 3206 section 5: AUTH covers "an attempt to authenticate in
	// violation of policy"; sending a password in clear over the network
	// is one.
	errCleartext = &replyError{"AUTH", "Authentication requires TLS (use STLS) or a loopback connection"}
	// RFC 2449 section 8.1.2: "the maildrop is currently locked".
	errInUse = &replyError{"IN-USE", "Maildrop is in use by another POP3 session"}
	// RFC 2449 section 8.1.1.
	errLoginDelay = &replyError{"LOGIN-DELAY", "Logged in too recently, try again later"}
	// RFC 3206 section 4: SYS/TEMP is "a transient system failure"; the
	// client should try later and not ask the user for a new password.
	errTemp       = &replyError{"SYS/TEMP", "Temporary server failure, try again later"}
	errNoSuchMsg  = &replyError{text: "No such message"}
	errWrongState = &replyError{text: "Command not valid in this state"}
	errUnknown    = &replyError{text: "Unknown command"}
)

// reply writes the -ERR response for err. It is the one place where
// errors become replies: anything not meant for the client (store and
// network failures) is logged and answered with [SYS/TEMP], never with
// its text.
func (s *session) reply(err error) {
	var re *replyError
	switch {
	case errors.As(err, &re):
		s.err(re.Error())
	case errors.Is(err, auth.ErrAuthFailed):
		// RFC 3206 section 5: AUTH means the credentials are at fault,
		// not the system.
		s.err("[AUTH] Authentication failed")
	case errors.Is(err, mailstore.ErrLeaseHeld):
		s.err(errInUse.Error())
	case errors.Is(err, mailstore.ErrNoSuchMessage):
		s.err(errNoSuchMsg.Error())
	default:
		s.log.Error("command failed", "err", err)
		s.err(errTemp.Error())
	}
}
