// Package smtpserver is Roost's SMTP front end on github.com/emersion/go-smtp:
// the MX role (port 25: mail for the served domains, no relaying) and the
// submission role (587 with STARTTLS, 465 with implicit TLS: AUTH required,
// sender checks, local recipients delivered at once, remote ones queued,
// a copy filed in the sender's Sent). Submission takes the DSN parameters
// (RFC 3461), carries them into the queue entries, and reports a local
// delivery that asked for NOTIFY=SUCCESS.
//
// One Server serves one role (Config.Submission); the app builds one for
// MX and one for submission and calls Serve once per listener (submission
// serves both the STARTTLS and the implicit-TLS listener). Protocol work is
// go-smtp's; this package owns the policy (who may send what to whom), the
// limits (size, recipients, connections per IP, timeouts) and the mapping
// of internal errors to SMTP replies (replies.go, the one place).
package smtpserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/delivery"
	"github.com/roost-mail/roost/internal/linger"
	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/queue"
)

// Config is one role's settings. Zero values take the defaults noted.
type Config struct {
	Hostname string      // greeting, EHLO and Received: name
	TLS      *tls.Config // nil: no STARTTLS, no implicit TLS
	// MaxMessageBytes is the SIZE limit (RFC 1870); default 50 MiB.
	MaxMessageBytes int64
	// MaxRecipients per transaction; default 100, the minimum RFC 5321
	// section 4.5.3.1.8 asks servers to accept.
	MaxRecipients int
	// MaxConnsPerIP limits concurrent connections from one address;
	// default 20, < 0: unlimited.
	MaxConnsPerIP int
	// ReadTimeout, WriteTimeout bound each command read / reply write;
	// default 5 minutes (RFC 5321 section 4.5.3.2.7: server timeout).
	ReadTimeout, WriteTimeout time.Duration
	// Submission selects the submission role: AUTH required (RFC 6409
	// section 4.3), only over TLS or loopback; sender checks; relaying to
	// remote domains through the queue.
	Submission bool
	// SaveSent files a copy of each submitted message in the sender's Sent.
	SaveSent bool
	// MaxHops is the Received: count above which mail is refused as a
	// loop; default delivery.DefaultMaxHops.
	MaxHops int
	// Postmaster receives mail for postmaster@ a served domain without
	// such an address (RFC 5321 section 4.5.1); empty: none.
	Postmaster string
}

func (c Config) withDefaults() Config {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 50 << 20
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = 100
	}
	if c.MaxConnsPerIP == 0 {
		c.MaxConnsPerIP = 20
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 5 * time.Minute
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 5 * time.Minute
	}
	return c
}

// Server is one SMTP role over one store.
type Server struct {
	store   mailstore.Store
	authn   *auth.Authenticator
	queue   *queue.Queue
	deliver *delivery.Deliverer
	cfg     Config
	log     *slog.Logger
	gs      *smtp.Server

	mu       sync.Mutex
	perIP    map[string]int        // guarded by mu: open connections per remote IP
	conns    map[*trackedConn]bool // guarded by mu: every open connection
	closing  bool                  // guarded by mu: Shutdown was called
	shutdown chan struct{}         // closed by Shutdown
	serveWG  sync.WaitGroup        // Serve calls in progress
}

// New builds a server for one role. authn may be nil for an MX-only
// server; q may be nil when remote recipients are never accepted (MX, or a
// submission server without outbound delivery: remote recipients are then
// refused as relaying).
func New(store mailstore.Store, authn *auth.Authenticator, q *queue.Queue, cfg Config, log *slog.Logger) *Server {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	role := "mx"
	if cfg.Submission {
		role = "submission"
	}
	log = log.With("proto", "smtp", "role", role)
	d := delivery.New(store, cfg.Hostname, log)
	d.MaxHops = cfg.MaxHops
	s := &Server{
		store: store, authn: authn, queue: q, deliver: d, cfg: cfg, log: log,
		perIP:    make(map[string]int),
		conns:    make(map[*trackedConn]bool),
		shutdown: make(chan struct{}),
	}
	gs := smtp.NewServer(&backend{s: s})
	gs.Domain = cfg.Hostname
	gs.TLSConfig = cfg.TLS
	gs.MaxMessageBytes = cfg.MaxMessageBytes
	gs.MaxRecipients = cfg.MaxRecipients
	gs.ReadTimeout = cfg.ReadTimeout
	gs.WriteTimeout = cfg.WriteTimeout
	gs.EnableSMTPUTF8 = true // RFC 6531: we store bytes as received
	// RFC 3461: RET/ENVID and NOTIFY/ORCPT are carried with the message
	// and honoured when reporting (internal/queue). Offered on submission
	// only: on the MX an unauthenticated sender asking NOTIFY=SUCCESS would
	// have us send a report to any address it names (backscatter). DSN is
	// an optional extension; a server relaying to our MX then reports
	// "relayed" itself (RFC 3461 section 5.2.3).
	gs.EnableDSN = cfg.Submission
	// The session decides per connection whether AUTH is allowed (TLS or
	// loopback); go-smtp's own check would refuse loopback.
	gs.AllowInsecureAuth = true
	gs.ErrorLog = slogPrinter{log}
	s.gs = gs
	return s
}

// Serve accepts connections on ln until Shutdown. With implicitTLS every
// connection starts with a TLS handshake (RFC 8314 section 3.3, port 465).
func (s *Server) Serve(ln net.Listener, implicitTLS bool) error {
	if implicitTLS && s.cfg.TLS == nil {
		return errors.New("smtpserver: implicit TLS needs a TLS config")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return smtp.ErrServerClosed
	}
	s.serveWG.Add(1)
	s.mu.Unlock()
	defer s.serveWG.Done()
	var l net.Listener = &limitListener{Listener: ln, s: s}
	if implicitTLS {
		l = tls.NewListener(l, s.cfg.TLS)
	}
	err := s.gs.Serve(l)
	if errors.Is(err, net.ErrClosed) {
		select {
		case <-s.shutdown:
			return nil
		default:
		}
	}
	return err
}

// Shutdown stops accepting, ends every session at its next command with
// 421 (RFC 5321 section 3.8) — a transaction being stored completes and
// gets its reply first — and waits for the sessions to end or ctx to
// expire, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	close(s.shutdown)
	for c := range s.conns {
		c.expire()
	}
	s.mu.Unlock()

	done := make(chan error, 1)
	go func() { done <- s.gs.Shutdown(ctx) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		err = ctx.Err()
		s.mu.Lock()
		for c := range s.conns {
			c.Conn.Close()
		}
		s.mu.Unlock()
		<-done
	}
	if errors.Is(err, smtp.ErrServerClosed) {
		err = nil
	}
	return err
}

// limitListener enforces MaxConnsPerIP and tracks connections for Shutdown.
type limitListener struct {
	net.Listener
	s *Server
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := remoteIP(c.RemoteAddr())
		s := l.s
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			c.Close()
			continue
		}
		if s.cfg.MaxConnsPerIP > 0 && s.perIP[ip] >= s.cfg.MaxConnsPerIP {
			s.mu.Unlock()
			go refuseBusy(c, s.log, ip)
			continue
		}
		s.perIP[ip]++
		tc := &trackedConn{Conn: c, s: s, ip: ip}
		s.conns[tc] = true
		s.mu.Unlock()
		return tc, nil
	}
}

// refuseBusy answers a connection over the per-IP limit with 421 (RFC 5321
// section 3.8: the server may close with 421 when it cannot serve).
func refuseBusy(c net.Conn, log *slog.Logger, ip string) {
	c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "421 4.7.0 Too many connections from your address, try later\r\n")
	linger.Close(c, c)
	log.Info("connection refused: per-IP limit", "ip", ip)
}

// trackedConn counts against its IP until closed. After Shutdown every
// read deadline is in the past, so go-smtp's next command read times out
// and it says 421 and closes; go-smtp re-arms the deadline per command,
// hence the override here rather than one SetReadDeadline call.
type trackedConn struct {
	net.Conn
	s    *Server
	ip   string
	once sync.Once
	mu   sync.Mutex
	past bool // guarded by mu
}

func (c *trackedConn) expire() {
	c.mu.Lock()
	c.past = true
	c.mu.Unlock()
	c.Conn.SetReadDeadline(time.Unix(1, 0))
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	if c.past {
		t = time.Unix(1, 0)
	}
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// Read re-arms the read deadline for every read. go-smtp sets it once per
// command line, so a whole DATA transfer had to arrive within ReadTimeout
// of the DATA command: a 50 MiB message on a slow link failed with 451
// however steadily its bytes came. RFC 5321 sections 4.5.3.2.6-7 time
// each block of data, not the message.
func (c *trackedConn) Read(p []byte) (int, error) {
	if err := c.SetReadDeadline(time.Now().Add(c.s.cfg.ReadTimeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// Close ends the connection so that the client reads the last reply
// (221, 421) even if it pipelined more (linger); it does not wait.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		linger.CloseLater(c.Conn, c.Conn)
		c.s.mu.Lock()
		delete(c.s.conns, c)
		if c.s.perIP[c.ip]--; c.s.perIP[c.ip] <= 0 {
			delete(c.s.perIP, c.ip)
		}
		c.s.mu.Unlock()
	})
	return nil
}

func remoteIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

func isLoopback(a net.Addr) bool {
	ip := net.ParseIP(remoteIP(a))
	return ip != nil && ip.IsLoopback()
}

// slogPrinter routes go-smtp's internal error log into slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) { p.log.Warn(fmt.Sprintf(format, v...)) }
func (p slogPrinter) Println(v ...any)               { p.log.Warn(fmt.Sprint(v...)) }
