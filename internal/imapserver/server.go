// Package imapserver is Roost's IMAP4rev2 (RFC 9051) and IMAP4rev1
// (RFC 3501) server: the session loop, the command parser, response
// rendering and one handler file per command group, over mailstore.Store.
//
// Every session learns what other sessions and deliveries changed only from
// the store's change feed (Store.Changes), woken by the account's Watcher;
// nothing polls. A selected session keeps its own UID list, which is its
// sequence-number map, and reports changes as untagged responses when RFC
// 9051 section 7.5.1 lets it.
package imapserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/linger"
	"github.com/roost-mail/roost/internal/listen"
	"github.com/roost-mail/roost/internal/mailstore"
)

// Config tunes the server. Zero values get defaults.
type Config struct {
	Hostname string
	// TLS enables STARTTLS and implicit TLS listeners; nil: neither.
	TLS *tls.Config
	// MaxLineBytes bounds a command line (without its literals).
	MaxLineBytes int64
	// MaxLiteralBytes bounds one literal (other than an APPEND message).
	MaxLiteralBytes int64
	// IdleTimeout is the autologout timer of an authenticated session
	// (RFC 9051 section 5.4: at least 30 minutes).
	IdleTimeout time.Duration
	// LoginTimeout is the autologout timer before authentication.
	LoginTimeout time.Duration
	// AppendLimit bounds one APPENDed message (RFC 7889).
	AppendLimit int64
}

func (c Config) withDefaults() Config {
	if c.Hostname == "" {
		c.Hostname = "localhost"
	}
	if c.MaxLineBytes <= 0 {
		c.MaxLineBytes = 64 << 10
	}
	if c.MaxLiteralBytes <= 0 {
		c.MaxLiteralBytes = 64 << 10
	}
	if c.AppendLimit <= 0 {
		c.AppendLimit = 50 << 20
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 30 * time.Minute
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = 60 * time.Second
	}
	return c
}

// Server serves IMAP over listeners given to Serve.
type Server struct {
	store mailstore.Store
	authn *auth.Authenticator
	cfg   Config
	log   *slog.Logger

	closing atomic.Bool
	done    chan struct{}
	wg      sync.WaitGroup
	// ctx bounds every store and auth call of every session; it is
	// cancelled when Shutdown gives up waiting.
	ctx    context.Context
	cancel context.CancelFunc

	// feed shares change-feed reads between sessions woken together.
	feed feedReads

	mu        sync.Mutex
	listeners map[net.Listener]struct{} // guarded by mu
	sessions  map[*session]struct{}     // guarded by mu
}

// New makes a server; it serves nothing until Serve.
func New(store mailstore.Store, authn *auth.Authenticator, cfg Config, log *slog.Logger) *Server {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		ctx:       ctx,
		cancel:    cancel,
		store:     store,
		authn:     authn,
		cfg:       cfg.withDefaults(),
		log:       log,
		done:      make(chan struct{}),
		listeners: make(map[net.Listener]struct{}),
		sessions:  make(map[*session]struct{}),
	}
}

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("imapserver: server closed")

// Serve accepts connections on ln until it closes or Shutdown is called.
// With implicitTLS every connection starts with a TLS handshake (port 993,
// RFC 8314).
func (s *Server) Serve(ln net.Listener, implicitTLS bool) error {
	if implicitTLS && s.cfg.TLS == nil {
		return errors.New("imapserver: implicit TLS without a TLS config")
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
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
		c, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				return ErrServerClosed
			}
			if _, ok := backoff.Retry(err); ok {
				continue
			}
			return fmt.Errorf("imapserver: accept: %w", err)
		}
		backoff.Reset()
		s.wg.Add(1)
		go s.handle(c, implicitTLS)
	}
}

func (s *Server) handle(c net.Conn, implicitTLS bool) {
	defer s.wg.Done()
	sess := newSession(s, c)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		_, _ = c.Write([]byte("* BYE Server shutting down\r\n"))
		_ = linger.Close(c, c)
		return
	}
	s.sessions[sess] = struct{}{}
	s.mu.Unlock()
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("imap session panic", "remote", c.RemoteAddr().String(), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
		sess.close()
		s.mu.Lock()
		delete(s.sessions, sess)
		s.mu.Unlock()
	}()
	if implicitTLS {
		if err := sess.startTLS(); err != nil {
			s.log.Debug("imap tls handshake failed", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
	}
	sess.serve()
}

// Shutdown stops accepting, tells every session BYE and waits for them to
// end (or ctx to expire, when the rest are cut off).
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if !s.closing.Swap(true) {
		close(s.done)
	}
	for ln := range s.listeners {
		_ = ln.Close()
	}
	for sess := range s.sessions {
		sess.interrupt()
	}
	s.mu.Unlock()
	finished := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(finished)
	}()
	select {
	case <-finished:
		s.cancel()
		return nil
	case <-ctx.Done():
		s.cancel()
		s.mu.Lock()
		for sess := range s.sessions {
			_ = sess.raw.Close()
		}
		s.mu.Unlock()
		<-finished
		return ctx.Err()
	}
}
