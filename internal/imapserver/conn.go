package imapserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/linger"
	"github.com/roost-mail/roost/internal/mailstore"
)

// Session states, RFC 9051 section 3.
const (
	stateNotAuth uint8 = 1 << iota
	stateAuth
	stateSelected
	stateLogout
)

// The read buffer is small on purpose: thousands of idle sessions each
// hold one (see BenchmarkIdleSessionMemory). A session in IDLE drops its
// writer (idle.go), so the write buffer can hold a whole common response
// (FETCH 1:20 (FLAGS ENVELOPE) is about 5 KB): one write to the socket a
// command instead of two, 150-158 -> 140-145 us of server CPU for that
// FETCH.
const (
	readBufSize  = 1024
	writeBufSize = 16384
)

type session struct {
	srv *Server
	// raw is the accepted connection, never reassigned: other goroutines
	// (Shutdown) use it. conn is what the session reads and writes, TLS
	// over raw after STARTTLS.
	raw      net.Conn
	conn     net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	isTLS    bool
	loopback bool
	// deflate is conn once COMPRESS=DEFLATE is active (RFC 4978).
	deflate *compressConn

	state        uint8
	acct         mailstore.Account
	authFailures int
	// byeAfterReply, when set, ends the session after the tagged reply.
	byeAfterReply string

	// Enabled extensions (RFC 5161).
	rev2, condstore, qresync, utf8 bool
	// cmdModSeq is the highest MODSEQ sent in FETCH data by the command
	// being run (sentModSeq).
	cmdModSeq mailstore.ModSeq

	sel *selection
	// saved is the SEARCHRES result "$" (RFC 5182), as UIDs.
	saved []mailstore.UID

	cmdBuf []byte
	// suppressReply: the handler already wrote its tagged reply.
	suppressReply bool
	// cmdAppendLimit is the append limit readCommand read for the
	// command being run (valid when cmdAppendKnown), so cmdAppend need
	// not read the account again; the store still enforces the quota.
	cmdAppendLimit                   int64
	cmdAppendKnown, cmdAppendByQuota bool
}

func newSession(srv *Server, c net.Conn) *session {
	s := &session{
		srv:   srv,
		raw:   c,
		conn:  c,
		br:    bufio.NewReaderSize(c, readBufSize),
		bw:    bufio.NewWriterSize(c, writeBufSize),
		state: stateNotAuth,
	}
	if tcp, ok := c.RemoteAddr().(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		s.loopback = true
	}
	return s
}

// logger returns a logger with the session's context. It is built on
// demand, not kept: a prebuilt slog.Logger per session costs memory that
// thousands of idle sessions would hold for nothing.
func (s *session) logger() *slog.Logger {
	l := s.srv.log.With("proto", "imap", "remote", s.raw.RemoteAddr().String())
	if s.acct.Name != "" {
		l = l.With("account", s.acct.Name)
	}
	return l
}

// interrupt wakes a session blocked reading so that it sees the server is
// closing. Called by Shutdown.
func (s *session) interrupt() {
	_ = s.raw.SetReadDeadline(time.Now())
}

// close ends the connection so that the client reads our last reply
// even if it sent more we did not read (linger).
func (s *session) close() {
	if s.sel != nil && s.sel.watcher != nil {
		s.sel.watcher.Close()
	}
	_ = linger.Close(s.conn, s.raw)
}

func (s *session) startTLS() error {
	tc := tls.Server(s.conn, s.srv.cfg.TLS)
	_ = tc.SetDeadline(time.Now().Add(30 * time.Second))
	if err := tc.Handshake(); err != nil {
		return fmt.Errorf("tls handshake: %w", err)
	}
	_ = tc.SetDeadline(time.Time{})
	s.conn = tc
	s.isTLS = true
	s.br.Reset(tc)
	s.bw.Reset(tc)
	return nil
}

// plaintextOK says whether passwords may be sent on this connection.
func (s *session) plaintextOK() bool { return s.isTLS || s.loopback }

func (s *session) serve() {
	// RFC 9051 section 7.1.1: the greeting, with capabilities.
	s.writef("* OK [CAPABILITY %s] %s Roost IMAP ready\r\n", s.capabilities(), s.srv.cfg.Hostname)
	if s.flush() != nil {
		return
	}
	for s.state != stateLogout {
		timeout := s.srv.cfg.LoginTimeout
		if s.state != stateNotAuth {
			timeout = s.srv.cfg.IdleTimeout
		}
		_ = s.conn.SetReadDeadline(time.Now().Add(timeout))
		if s.srv.closing.Load() {
			s.bye("Server shutting down")
			return
		}
		line, err := s.readCommand()
		if err != nil {
			var re *respErr
			if errors.As(err, &re) {
				s.reply(re.tag, re)
				if s.flush() != nil {
					return
				}
				continue
			}
			switch {
			case s.srv.closing.Load():
				s.bye("Server shutting down")
			case errors.Is(err, os.ErrDeadlineExceeded):
				// RFC 9051 section 5.4: autologout.
				s.bye("Autologout; idle for too long")
			case errors.Is(err, errCorruptDeflate):
				// Nothing more the client sends can be read (RFC 4978);
				// the output side still works, so say why.
				s.bye("Corrupt compressed data")
			}
			return
		}
		s.execute(line)
		if s.byeAfterReply != "" {
			s.bye(s.byeAfterReply)
			return
		}
		if s.flush() != nil {
			return
		}
	}
}

func (s *session) bye(text string) {
	s.writef("* BYE %s\r\n", text)
	_ = s.flush()
	s.state = stateLogout
}

// handlerSpec says in which states a command is valid and whether its
// non-UID form forbids EXPUNGE responses (RFC 9051 section 7.5.1).
type handlerSpec struct {
	fn        func(*session, *command) error
	states    uint8
	noExpunge bool
}

// Command states.
const (
	anyState    = stateNotAuth | stateAuth | stateSelected
	authedState = stateAuth | stateSelected
)

// handlers is the dispatch table. It is filled in at package
// initialisation (a method value map cannot be a constant), never changed.
var handlers = map[string]handlerSpec{
	"CAPABILITY":   {fn: (*session).cmdCapability, states: anyState},
	"NOOP":         {fn: (*session).cmdNoop, states: anyState},
	"LOGOUT":       {fn: (*session).cmdLogout, states: anyState},
	"ID":           {fn: (*session).cmdID, states: anyState},
	"STARTTLS":     {fn: (*session).cmdStartTLS, states: stateNotAuth},
	"LOGIN":        {fn: (*session).cmdLogin, states: stateNotAuth},
	"AUTHENTICATE": {fn: (*session).cmdAuthenticate, states: stateNotAuth},
	"ENABLE":       {fn: (*session).cmdEnable, states: authedState},
	"COMPRESS":     {fn: (*session).cmdCompress, states: authedState},
	"SELECT":       {fn: (*session).cmdSelect, states: authedState},
	"EXAMINE":      {fn: (*session).cmdSelect, states: authedState},
	"CREATE":       {fn: (*session).cmdCreate, states: authedState},
	"DELETE":       {fn: (*session).cmdDelete, states: authedState},
	"RENAME":       {fn: (*session).cmdRename, states: authedState},
	"SUBSCRIBE":    {fn: (*session).cmdSubscribe, states: authedState},
	"UNSUBSCRIBE":  {fn: (*session).cmdSubscribe, states: authedState},
	"LIST":         {fn: (*session).cmdList, states: authedState},
	"LSUB":         {fn: (*session).cmdList, states: authedState},
	"NAMESPACE":    {fn: (*session).cmdNamespace, states: authedState},
	"STATUS":       {fn: (*session).cmdStatus, states: authedState},
	"APPEND":       {fn: (*session).cmdAppend, states: authedState},
	"IDLE":         {fn: (*session).cmdIdle, states: authedState},
	"CHECK":        {fn: (*session).cmdNoop, states: stateSelected},
	"CLOSE":        {fn: (*session).cmdClose, states: stateSelected},
	"UNSELECT":     {fn: (*session).cmdClose, states: stateSelected},
	"EXPUNGE":      {fn: (*session).cmdExpunge, states: stateSelected},
	"SEARCH":       {fn: (*session).cmdSearch, states: stateSelected, noExpunge: true},
	"FETCH":        {fn: (*session).cmdFetch, states: stateSelected, noExpunge: true},
	"STORE":        {fn: (*session).cmdStore, states: stateSelected, noExpunge: true},
	"COPY":         {fn: (*session).cmdCopy, states: stateSelected},
	"MOVE":         {fn: (*session).cmdCopy, states: stateSelected},
}

// execute runs one command and writes its tagged reply: the one place where
// outcomes become OK/NO/BAD.
func (s *session) execute(line []byte) {
	c, err := parseCommand(line)
	tag := "*"
	if c != nil {
		tag = c.tag
	}
	if err != nil {
		s.reply(tag, s.mapError(err))
		return
	}
	h, ok := handlers[c.name]
	if !ok {
		s.reply(tag, &respErr{kind: "BAD", text: "Unknown command"})
		return
	}
	if h.states&s.state == 0 {
		s.reply(tag, &respErr{kind: "BAD", text: c.name + " not allowed in this state"})
		return
	}
	s.cmdModSeq = 0
	err = h.fn(s, c)
	if s.state == stateLogout {
		return
	}
	if s.suppressReply {
		s.suppressReply = false
		return
	}
	// Changes by others are reported before the tagged reply; EXPUNGE
	// only when the command allows it (RFC 9051 section 7.5.1).
	if serr := s.sync(!(h.noExpunge && !c.uid)); serr != nil && err == nil {
		err = serr
	}
	if s.state == stateLogout {
		return
	}
	if sel := s.sel; sel != nil && sel.heldModSeq != 0 && s.cmdModSeq >= sel.heldModSeq {
		// RFC 7162 section 3.2: MODSEQ FETCH data went out past an
		// expunge still held back, so the client is told a sync point
		// below it; resyncing from the highest MODSEQ it saw would
		// otherwise skip the expunge.
		s.writef("* OK [HIGHESTMODSEQ %d] Expunges pending\r\n", sel.heldModSeq-1)
	}
	if err != nil {
		s.reply(tag, s.mapError(err))
		return
	}
	code, text := c.okCode, c.okText
	if text == "" {
		text = c.name + " completed"
		if c.uid {
			text = "UID " + text
		}
	}
	s.reply(tag, &respErr{kind: "OK", code: code, text: text})
}

// respErr is a reply: its kind (OK, NO, BAD), a response code and the text
// the client sees, kept apart from the internal cause, which is only logged.
type respErr struct {
	tag   string // for errors found before parsing (reader limits)
	kind  string
	code  string
	text  string
	cause error
}

func (e *respErr) Error() string {
	s := e.kind + " " + e.text
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

func (e *respErr) Unwrap() error { return e.cause }

func no(code, text string) *respErr  { return &respErr{kind: "NO", code: code, text: text} }
func bad(code, text string) *respErr { return &respErr{kind: "BAD", code: code, text: text} }

// mapError turns any error into the reply the client sees.
func (s *session) mapError(err error) *respErr {
	var re *respErr
	var pe *parseError
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &pe):
		return &respErr{kind: "BAD", text: "Syntax error: " + pe.msg}
	case errors.Is(err, auth.ErrAuthFailed):
		// RFC 5530 section 3.
		return no("AUTHENTICATIONFAILED", "Authentication failed")
	case errors.Is(err, mailstore.ErrNoSuchMailbox):
		return no("NONEXISTENT", "No such mailbox")
	case errors.Is(err, mailstore.ErrExists):
		return no("ALREADYEXISTS", "Mailbox already exists")
	case errors.Is(err, mailstore.ErrHasChildren):
		// RFC 9051 section 7.1: HASCHILDREN.
		return no("HASCHILDREN", "Mailbox has children")
	case errors.Is(err, mailstore.ErrCannotDelete):
		return no("CANNOT", "This mailbox cannot be deleted")
	case errors.Is(err, mailstore.ErrInvalidName):
		return no("CANNOT", "Invalid mailbox name")
	case errors.Is(err, mailstore.ErrOverQuota):
		// RFC 9208 section 4.3.1 (and RFC 9051 section 7.1): an APPEND,
		// COPY or MOVE that would take the account over its quota.
		return no("OVERQUOTA", "Quota exceeded")
	case errors.Is(err, mailstore.ErrTooBig):
		// RFC 7889 section 4: the store's own size limit.
		return no("TOOBIG", "Message too big")
	case errors.Is(err, mailstore.ErrNoSuchMessage):
		return no("NONEXISTENT", "No such message")
	case errors.Is(err, mailstore.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		s.logger().Warn("imap command failed", "err", err)
		return no("UNAVAILABLE", "Service temporarily unavailable")
	}
	s.logger().Error("imap command failed", "err", err)
	return no("SERVERBUG", "Internal error")
}

// sentModSeq notes a MODSEQ FETCH data item written for the command.
func (s *session) sentModSeq(m mailstore.ModSeq) {
	if m > s.cmdModSeq {
		s.cmdModSeq = m
	}
}

func (s *session) reply(tag string, r *respErr) {
	if r.cause != nil {
		s.logger().Debug("imap reply", "kind", r.kind, "code", r.code, "err", r.cause)
	}
	if r.code != "" {
		s.writef("%s %s [%s] %s\r\n", tag, r.kind, r.code, r.text)
		return
	}
	s.writef("%s %s %s\r\n", tag, r.kind, r.text)
}

func (s *session) writef(format string, args ...any) {
	fmt.Fprintf(s.bw, format, args...)
}

func (s *session) flush() error {
	_ = s.conn.SetWriteDeadline(time.Now().Add(5 * time.Minute))
	err := s.bw.Flush()
	if err == nil && s.deflate != nil {
		// RFC 4978: the client decodes only what a sync flush completes.
		err = s.deflate.flush()
	}
	if err != nil {
		s.state = stateLogout
		return err
	}
	return nil
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line up to LF, without its CRLF, of at most max bytes.
// A longer line is read to its end and dropped (errLineTooLong), so the
// connection stays in step.
func (s *session) readLine(dst []byte, max int64) ([]byte, error) {
	start := len(dst)
	tooLong := false
	for {
		frag, err := s.br.ReadSlice('\n')
		if !tooLong {
			if room := max + 2 - int64(len(dst)-start); int64(len(frag)) > room {
				// Keep the head (for the tag of the BAD reply), drop the rest.
				tooLong = true
				dst = append(dst, frag[:room]...)
			} else {
				dst = append(dst, frag...)
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err != nil {
			return dst, err
		}
		if tooLong {
			return dst, errLineTooLong
		}
		dst = dst[:len(dst)-1]
		if n := len(dst); n > start && dst[n-1] == '\r' {
			dst = dst[:n-1]
		}
		return dst, nil
	}
}

// literalSuffix finds a literal announcement at the end of a line:
// "{n}", "{n+}", "{n-}" (RFC 7888) or "~{n}" (RFC 3516). sync is false for
// non-synchronizing literals. It allocates nothing: skipCommand calls it
// for every line of a command being discarded, however many there are.
func literalSuffix(line []byte) (n int64, sync, ok bool) {
	if len(line) < 3 || line[len(line)-1] != '}' {
		return 0, false, false
	}
	i := bytes.LastIndexByte(line, '{')
	if i < 0 {
		return 0, false, false
	}
	num := line[i+1 : len(line)-1]
	sync = true
	if k := len(num); k > 0 && (num[k-1] == '+' || num[k-1] == '-') {
		num, sync = num[:len(num)-1], false
	}
	if len(num) == 0 {
		return 0, false, false
	}
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false, false
		}
		if n > (math.MaxInt64-int64(c-'0'))/10 {
			return 0, false, false // does not fit int64
		}
		n = n*10 + int64(c-'0')
	}
	return n, sync, true
}

// literalChunk is how much literal buffer readCommand adds at a time: the
// buffer grows with the bytes that arrive, never to the announced size up
// front, so a client that announces 50 MiB and sends nothing costs nothing.
const literalChunk = 64 << 10

// readCommand reads a whole command, literals included, answering "+" to
// synchronizing literals. Size limits are checked before any literal is
// read.
func (s *session) readCommand() ([]byte, error) {
	buf := s.cmdBuf[:0]
	defer func() {
		if cap(buf) <= 1024 {
			s.cmdBuf = buf[:0]
		} else {
			s.cmdBuf = nil
		}
	}()
	var total int64
	var err error
	// An APPEND's limit, read from the store once per command.
	s.cmdAppendKnown = false
	for lines := 0; ; lines++ {
		start := len(buf)
		buf, err = s.readLine(buf, s.srv.cfg.MaxLineBytes)
		if err == errLineTooLong {
			return nil, &respErr{tag: tagOf(buf), kind: "BAD", text: "Command line too long"}
		}
		if err != nil {
			return nil, err
		}
		if lines == 0 && len(buf) == 0 {
			lines = -1 // an empty line is not a command: ignore it
			continue
		}
		n, sync, ok := literalSuffix(buf[start:])
		if !ok {
			return buf, nil
		}
		limit := s.srv.cfg.MaxLiteralBytes
		bound := limit // for all of the command's literals together
		// Before login APPEND is not valid (RFC 9051 section 6.3.12: it
		// belongs to the authenticated and selected states), so its
		// literals get the same small bound as any other command's: an
		// unauthenticated client cannot make the server read or hold a
		// message-sized literal.
		isAppend := s.state != stateNotAuth && commandNameOf(buf) == "APPEND"
		if isAppend {
			if !s.cmdAppendKnown {
				s.cmdAppendLimit, s.cmdAppendByQuota = s.literalLimit()
				s.cmdAppendKnown = true
			}
			limit = s.cmdAppendLimit
			// The configured limit, not the quota's: a MULTIAPPEND that
			// fits message by message but not in the quota gets the
			// store's OVERQUOTA, not a cut-off command.
			bound = max(bound, s.srv.cfg.AppendLimit)
		}
		// The whole command, lines included: literal bytes are bounded by
		// 4*bound, but a command of many short lines with empty literals
		// ("{0+}") would otherwise be buffered however long it is.
		if int64(len(buf)) > s.srv.cfg.MaxLineBytes+4*bound {
			tag := tagOf(buf)
			if !sync {
				if err := s.skipCommand(n); err != nil {
					return nil, err
				}
			}
			// A synchronizing literal is refused before its data: RFC 9051
			// section 7.5 lets the server answer BAD instead of "+".
			return nil, &respErr{tag: tag, kind: "BAD", text: "Command too long"}
		}
		total += n
		if n > limit || total > 4*bound {
			tag := tagOf(buf)
			if !sync {
				// The client sends the data regardless: swallow it and the
				// rest of the command so that the connection stays usable.
				if err := s.skipCommand(n); err != nil {
					return nil, err
				}
			}
			// RFC 7889 section 4: TOOBIG, refused before the data of a
			// synchronizing literal is sent (the data of a non-
			// synchronizing one, RFC 7888, came anyway and was dropped).
			if isAppend {
				r := tooBig(s.cmdAppendByQuota && n > limit)
				r.tag = tag
				return nil, r
			}
			return nil, &respErr{tag: tag, kind: "BAD", code: "TOOBIG", text: "Literal too big"}
		}
		if sync {
			// RFC 9051 section 7.5: command continuation request.
			s.writef("+ Ready for literal data\r\n")
			if err := s.flush(); err != nil {
				return nil, err
			}
		}
		buf = append(buf, '\r', '\n')
		for left := int(n); left > 0; {
			k := min(left, literalChunk)
			if need := len(buf) + k; need > cap(buf) {
				// Doubling keeps the copying linear in the bytes received
				// (append grows large slices by only 1.25x); the announced
				// size caps it, so a message that does arrive is not given
				// more room than it needs.
				nb := make([]byte, len(buf), min(max(2*cap(buf), need), len(buf)+left))
				copy(nb, buf)
				buf = nb
			}
			got, err := io.ReadFull(s.br, buf[len(buf):len(buf)+k])
			buf = buf[:len(buf)+got]
			if err != nil {
				return nil, err
			}
			left -= got
		}
	}
}

// skipCommand discards n literal bytes and the rest of the command. Its
// line buffer is reused: a client may send any number of lines here.
func (s *session) skipCommand(n int64) error {
	var line []byte
	for {
		// bufio's Discard, not io.CopyN: that allocates on every call,
		// even for the empty literals of a command of millions of them.
		for n > 0 {
			k := int(min(n, 1<<30))
			if _, err := s.br.Discard(k); err != nil {
				return err
			}
			n -= int64(k)
		}
		var err error
		line, err = s.readLine(line[:0], s.srv.cfg.MaxLineBytes)
		if err != nil && err != errLineTooLong {
			return err
		}
		var sync, ok bool
		n, sync, ok = literalSuffix(line)
		if !ok || sync {
			return nil
		}
	}
}

func tagOf(line []byte) string {
	p := &parser{b: line}
	t, err := p.tag()
	if err != nil || p.peek() != ' ' {
		return "*"
	}
	return t
}

func commandNameOf(line []byte) string {
	p := &parser{b: line}
	if _, err := p.tag(); err != nil || !p.take(' ') {
		return ""
	}
	a, _ := p.atom()
	return strings.ToUpper(a)
}
