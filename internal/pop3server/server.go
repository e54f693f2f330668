// Package pop3server is Roost's POP3 front end (RFC 1939, with CAPA and
// response codes from RFC 2449 and RFC 3206, STLS from RFC 2595 and SASL
// AUTH from RFC 5034). It owns the POP3 wire protocol, the per-session
// state machine and the POP3 view of a mailbox: INBOX as a snapshot taken
// at login, minus the messages hidden from the session's view, with message
// numbers fixed for the session and deletions applied at QUIT.
//
// It talks to the mail store only through mailstore.Store, so changes it
// makes (expunges, moves) reach IMAP sessions through the store's notifier,
// and to passwords only through auth.Authenticator.
package pop3server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/listen"
	"github.com/roost-mail/roost/internal/mailstore"
)

// Delete modes: what DELE does to a message at QUIT (DESIGN section 4).
const (
	// DeleteExpunge removes the message from INBOX; the store keeps it
	// recoverable for the retention window.
	DeleteExpunge = "expunge"
	// DeleteHide hides the message from POP3 (the account's own view) and
	// leaves it in INBOX for IMAP.
	DeleteHide = "hide"
	// DeleteTrash moves the message to the \Trash mailbox.
	DeleteTrash = "trash"
)

// DefaultIdleTimeout is the autologout timer. RFC 1939 section 3: "Such a
// timer MUST be of at least 10 minutes' duration."
const DefaultIdleTimeout = 10 * time.Minute

// Config configures a Server.
type Config struct {
	// Hostname is named in the greeting; empty: the machine's host name.
	Hostname string
	// TLS enables STLS and implicit TLS listeners; nil disables both.
	TLS *tls.Config
	// Delete is DeleteExpunge (the default when empty), DeleteHide or
	// DeleteTrash. Device views always hide, whatever the mode.
	Delete string
	// IdleTimeout is the autologout timer; zero means DefaultIdleTimeout.
	// Values below 10 minutes break RFC 1939 section 3 and exist for tests.
	IdleTimeout time.Duration
	// LoginDelay, when positive, is the least time between two logins to
	// the same maildrop view, announced as LOGIN-DELAY (RFC 2449 section
	// 6.5) and enforced with [LOGIN-DELAY] (RFC 2449 section 8.1.1).
	LoginDelay time.Duration
}

// Validate reports a configuration that cannot be served.
func (c Config) Validate() error {
	switch c.Delete {
	case "", DeleteExpunge, DeleteHide, DeleteTrash:
	default:
		return fmt.Errorf("pop3: delete mode %q: want %q, %q or %q", c.Delete, DeleteExpunge, DeleteHide, DeleteTrash)
	}
	if c.IdleTimeout < 0 || c.LoginDelay < 0 {
		return errors.New("pop3: negative timeout")
	}
	return nil
}

// Server serves POP3 on any number of listeners over one store.
type Server struct {
	store  mailstore.Store
	authn  *auth.Authenticator
	cfg    Config
	cfgErr error
	log    *slog.Logger
	// node names this process in lease owners ("pop3/host/pid"), so an
	// operator can tell which node holds a maildrop.
	node  string
	sizes *sizeCache

	// ctx is cancelled when Shutdown gives up waiting: it aborts store
	// calls of sessions that are still running.
	ctx    context.Context
	cancel context.CancelFunc

	mu sync.Mutex
	// closing, listeners and sessions are guarded by mu.
	closing   bool
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	wg        sync.WaitGroup
}

// New makes a server. A configuration error (see Config.Validate) is
// returned by Serve.
func New(store mailstore.Store, authn *auth.Authenticator, cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Hostname == "" {
		if h, err := os.Hostname(); err == nil {
			cfg.Hostname = h
		} else {
			cfg.Hostname = "localhost"
		}
	}
	if cfg.Delete == "" {
		cfg.Delete = DeleteExpunge
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	host, _ := os.Hostname()
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		node:      fmt.Sprintf("pop3/%s/%d", host, os.Getpid()),
		store:     store,
		authn:     authn,
		cfg:       cfg,
		cfgErr:    cfg.Validate(),
		log:       log.With("proto", "pop3"),
		sizes:     newSizeCache(100_000),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
	}
}

// Serve accepts connections on ln until ln fails or Shutdown is called;
// after Shutdown it returns nil. implicitTLS serves POP3S (TLS from the
// first byte, RFC 8314 section 3.3), which needs Config.TLS.
func (s *Server) Serve(ln net.Listener, implicitTLS bool) error {
	if s.cfgErr != nil {
		return s.cfgErr
	}
	if implicitTLS && s.cfg.TLS == nil {
		return errors.New("pop3: implicit TLS listener without a TLS configuration")
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.listeners[ln] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.listeners, ln)
		s.mu.Unlock()
	}()

	var backoff listen.Backoff
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if d, ok := backoff.Retry(err); ok {
				s.log.Warn("accept failed; retried", "err", err, "delay", d)
				continue
			}
			return fmt.Errorf("pop3: accept: %w", err)
		}
		backoff.Reset()
		sess := newSession(s, nc, implicitTLS)
		s.mu.Lock()
		if s.closing {
			s.mu.Unlock()
			nc.Close()
			return nil
		}
		s.sessions[sess] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.sessions, sess)
				s.mu.Unlock()
			}()
			defer func() {
				// A bug in one session must not take the other
				// sessions (and the IMAP and SMTP servers in the same
				// process) down with it.
				if r := recover(); r != nil {
					s.log.Error("session panicked", "panic", r, "stack", string(debug.Stack()))
					sess.nc.Close()
				}
			}()
			sess.run()
		}()
	}
}

// Shutdown stops accepting, tells each session that waits for a command
// that the server is going away ("-ERR [SYS/TEMP]"; POP3 has no
// unsolicited responses, so this is the answer to the client's next
// command) and closes it without entering the UPDATE state (RFC 1939
// section 6: no messages are removed). A session in the middle of a
// command finishes it first. When ctx ends first, remaining connections
// are closed at once and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	for ln := range s.listeners {
		ln.Close()
	}
	for sess := range s.sessions {
		sess.interrupt()
	}
	s.mu.Unlock()

	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for sess := range s.sessions {
			sess.forceClose()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// sizeCache remembers the wire size of blobs. Blobs are content-addressed
// and immutable, so an entry never goes stale; the cache saves re-reading
// every message when a device polls the same maildrop again.
type sizeCache struct {
	mu  sync.Mutex
	m   map[string]int64 // guarded by mu
	max int
}

func newSizeCache(max int) *sizeCache {
	return &sizeCache{m: make(map[string]int64), max: max}
}

func (c *sizeCache) get(blobID string) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.m[blobID]
	return n, ok
}

func (c *sizeCache) put(blobID string, n int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		// Evict an arbitrary entry (map order): cheap, and a miss only
		// costs one blob read.
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[blobID] = n
}
