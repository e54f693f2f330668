// Package app is Roost's composition root: from a config.Config it opens
// the mail store (the only package besides tests that imports a storage
// backend), builds the authenticator, certificates, protocol front ends,
// outbound queue and HTTP server, opens the listeners and runs the
// background jobs; Shutdown undoes it all in order.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/imapserver"
	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/pop3server"
	"github.com/roost-mail/roost/internal/queue"
	"github.com/roost-mail/roost/internal/smtpserver"
	"github.com/roost-mail/roost/internal/storage/postgres"
	"github.com/roost-mail/roost/internal/storage/sqlite"
	"github.com/roost-mail/roost/internal/tlsutil"
	"github.com/roost-mail/roost/internal/web"
)

// FrontEnd is what every listener's server implements (the contract in
// the protocol packages): Serve blocks on one listener until Shutdown.
type FrontEnd interface {
	Serve(ln net.Listener, implicitTLS bool) error
	Shutdown(ctx context.Context) error
}

// Listening is one open listener.
type Listening struct {
	Name string // config listener name: "imap", "smtp", ...
	Addr net.Addr
}

// App is a running (or ready to run) server.
type App struct {
	cfg    *config.Config
	log    *slog.Logger
	nodeID string

	Store mailstore.Store
	Auth  *auth.Authenticator
	Certs *tlsutil.Certs
	Web   *web.Server
	queue *queue.Queue

	// frontEnds maps each listener name to its server. Several names may
	// share one server (imap and imaps).
	frontEnds map[string]FrontEnd

	mu        sync.Mutex
	listeners []net.Listener // guarded by mu
	started   bool
	stop      context.CancelFunc // ends the background jobs
	closing   atomic.Bool        // Shutdown began: Serve errors are expected
	jobs      sync.WaitGroup     // background jobs and Serve goroutines

	// failed is closed, with failure set first, when a listener or the
	// outbound queue stops on its own: the process can no longer serve
	// all it was asked to, so /healthz fails and serve exits non-zero
	// for a supervisor to restart it, rather than running on half-deaf.
	failed   chan struct{}
	failOnce sync.Once
	failure  error // set before failed is closed
}

// Failed is closed when a listener or the outbound queue has stopped
// without Shutdown; Failure then says which and why.
func (a *App) Failed() <-chan struct{} { return a.failed }

// Failure is why Failed was closed (nil before).
func (a *App) Failure() error {
	select {
	case <-a.failed:
		return a.failure
	default:
		return nil
	}
}

func (a *App) fail(err error) {
	a.failOnce.Do(func() {
		a.failure = err
		close(a.failed)
	})
}

// traceHeadroom is what the store's size limit allows beyond
// limits.max_message_bytes. The front ends hold clients to the configured
// limit (SMTP SIZE, IMAP APPENDLIMIT); the SMTP server then prepends its
// Received: field, and submission may add Message-ID: and Date:, so a
// message the client was told fits must still fit the store, or it would
// be refused for good after being accepted on the wire (RFC 1870).
const traceHeadroom = 64 << 10

func storeSizeLimit(configured int64) int64 {
	if configured <= 0 {
		return configured // no limit
	}
	return configured + traceHeadroom
}

// OpenStore opens the configured mail store. The CLI uses it too, so that
// it works on the same store as a running server.
func OpenStore(ctx context.Context, cfg *config.Config, log *slog.Logger) (mailstore.Store, error) {
	switch cfg.Store.Backend {
	case config.BackendSQLite:
		st, err := sqlite.Open(cfg.DataDir, sqlite.Options{
			MaxMessageSize: storeSizeLimit(cfg.Limits.MaxMessageBytes),
			DeferFlagSync:  cfg.Store.FlagSync == config.FlagSyncDeferred,
			Logger:         log,
		})
		if err != nil {
			return nil, fmt.Errorf("open store in %s: %w", cfg.DataDir, err)
		}
		return st, nil
	case config.BackendPostgres:
		st, err := postgres.Open(ctx, cfg.Store.DSN, postgres.Options{Logger: log})
		if err != nil {
			return nil, fmt.Errorf("open store: %w", err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("store.backend %q is not known", cfg.Store.Backend)
}

// Migrate brings the configured store's schema to this version. Both
// backends also migrate on every open; this lets an operator do it ahead of
// a rolling start of several nodes (each node's open then finds nothing to
// do).
func Migrate(ctx context.Context, cfg *config.Config) error {
	if cfg.Store.Backend == config.BackendPostgres {
		return postgres.Migrate(ctx, cfg.Store.DSN)
	}
	st, err := OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	return st.Close()
}

// AuthParams maps the [auth] section onto auth.Params.
func AuthParams(cfg *config.Config) auth.Params {
	p := auth.DefaultParams()
	p.Time = cfg.Auth.Argon2Time
	p.MemoryKiB = cfg.Auth.Argon2MemoryKiB
	p.Threads = cfg.Auth.Argon2Threads
	p.FailDelay = cfg.Auth.FailDelay
	p.CacheSize = cfg.Auth.CacheSize
	p.CacheTTL = cfg.Auth.CacheTTL
	return p
}

// New builds everything without opening a listener. cfg must be valid.
func New(cfg *config.Config, log *slog.Logger) (*App, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	host, _ := os.Hostname()
	a := &App{cfg: cfg, log: log, nodeID: host + "/" + strconv.Itoa(os.Getpid()), frontEnds: map[string]FrontEnd{}, failed: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := OpenStore(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	a.Store = st
	ok := false
	defer func() {
		if !ok {
			st.Close()
		}
	}()
	a.Auth = auth.New(st, AuthParams(cfg))
	a.Certs, err = tlsutil.New(tlsutil.Options{
		Hostname: cfg.Hostname, CertFile: cfg.TLS.CertFile, KeyFile: cfg.TLS.KeyFile,
		ACMEEmail: cfg.TLS.ACMEEmail, ACMEDirectory: cfg.TLS.ACMEDirectory, Dir: cfg.DataDir,
	})
	if err != nil {
		return nil, err
	}
	if err := a.buildFrontEnds(); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

// buildFrontEnds makes one server per protocol role and keys it by the
// listener names it serves. This is the one place where a new front end
// gets wired in.
func (a *App) buildFrontEnds() error {
	cfg, tlsCfg := a.cfg, a.Certs.TLSConfig()
	plog := a.log

	// IMAP: imap (STARTTLS) and imaps (implicit TLS) share one server.
	imap := imapserver.New(a.Store, a.Auth, imapserver.Config{
		Hostname: cfg.Hostname, TLS: tlsCfg, AppendLimit: cfg.Limits.MaxMessageBytes,
	}, plog)
	a.frontEnds[config.ListenIMAP] = imap
	a.frontEnds[config.ListenIMAPS] = imap

	// POP3: pop3 (STLS) and pop3s.
	pop3cfg := pop3server.Config{Hostname: cfg.Hostname, TLS: tlsCfg, Delete: cfg.POP3.Delete}
	if err := pop3cfg.Validate(); err != nil {
		return err
	}
	pop3 := pop3server.New(a.Store, a.Auth, pop3cfg, plog)
	a.frontEnds[config.ListenPOP3] = pop3
	a.frontEnds[config.ListenPOP3S] = pop3

	// Outbound queue: fed by submission, run in the background by Start.
	a.queue = queue.New(a.Store, queue.Config{
		Hostname: cfg.Hostname, Smarthost: cfg.Delivery.Smarthost, Resolver: cfg.Delivery.Resolver,
		Port: cfg.Delivery.Port, Transport: cfg.Delivery.Transport, NodeID: a.nodeID,
	}, plog)

	// SMTP: the MX accepts only local recipients (no queue); submission
	// and submissions share a server that relays through the queue.
	a.frontEnds[config.ListenSMTP] = smtpserver.New(a.Store, nil, nil, smtpserver.Config{
		Hostname: cfg.Hostname, TLS: tlsCfg, Postmaster: cfg.Delivery.Postmaster,
		MaxMessageBytes: cfg.Limits.MaxMessageBytes, MaxRecipients: cfg.Limits.MaxRecipients,
	}, plog)
	sub := smtpserver.New(a.Store, a.Auth, a.queue, smtpserver.Config{
		Hostname: cfg.Hostname, TLS: tlsCfg, Submission: true, SaveSent: cfg.Submission.SaveSent,
		Postmaster:      cfg.Delivery.Postmaster,
		MaxMessageBytes: cfg.Limits.MaxMessageBytes, MaxRecipients: cfg.Limits.MaxRecipients,
	}, plog)
	a.frontEnds[config.ListenSubmission] = sub
	a.frontEnds[config.ListenSubmissions] = sub

	// HTTP: health, metrics (and ACME http-01 when ACME is on).
	w, err := web.New(web.Options{
		Version:    Version(),
		Health:     a.health,
		Collectors: a.collectors(),
		Wrap:       a.Certs.HTTPHandler,
	}, plog)
	if err != nil {
		return err
	}
	a.Web = w
	a.frontEnds[config.ListenHTTP] = w
	return nil
}

// health is the store check behind /healthz: a cheap read that needs a
// working connection.
func (a *App) health(ctx context.Context) error {
	if err := a.Failure(); err != nil {
		return err
	}
	_, err := a.Store.ListDomains(ctx)
	return err
}

func (a *App) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "roost_auth_password_hashes_total",
			Help: "argon2id password verifications computed (cache misses and failures).",
		}, func() float64 { h, _ := a.Auth.Stats(); return float64(h) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "roost_auth_cache_entries",
			Help: "Accounts with a cached successful password verification.",
		}, func() float64 { _, n := a.Auth.Stats(); return float64(n) }),
	}
}

// Start opens every configured listener (all or none: a port in use fails
// Start before anything is served), serves them, and starts the background
// jobs (outbound queue, retention). It returns the open listeners.
func (a *App) Start(ctx context.Context) ([]Listening, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.started {
		return nil, errors.New("app already started")
	}
	type pending struct {
		ln  net.Listener
		fe  FrontEnd
		tls bool
		l   Listening
	}
	var open []pending
	var lc net.ListenConfig
	for _, n := range a.cfg.Listen.All() {
		fe := a.frontEnds[n.Name]
		if fe == nil && len(n.Addrs) > 0 {
			a.log.Warn("listener configured but its server is not built in", "listener", n.Name)
			continue
		}
		for _, addr := range n.Addrs {
			ln, err := lc.Listen(ctx, "tcp", addr)
			if err != nil {
				for _, p := range open {
					p.ln.Close()
				}
				return nil, fmt.Errorf("listen %s on %s: %w", n.Name, addr, err)
			}
			open = append(open, pending{ln, fe, n.ImplicitTLS, Listening{n.Name, ln.Addr()}})
		}
	}
	a.started = true
	bg, stop := context.WithCancel(context.Background())
	a.stop = stop
	var out []Listening
	for _, p := range open {
		a.listeners = append(a.listeners, p.ln)
		out = append(out, p.l)
		a.jobs.Add(1)
		go func() {
			defer a.jobs.Done()
			err := p.fe.Serve(p.ln, p.tls)
			if !a.closing.Load() {
				a.log.Error("listener stopped", "listener", p.l.Name, "addr", p.l.Addr.String(), "err", err)
				a.fail(fmt.Errorf("listener %s on %s stopped: %v", p.l.Name, p.l.Addr, err))
			}
		}()
	}
	a.jobs.Add(2)
	go func() {
		defer a.jobs.Done()
		if err := a.queue.Run(bg); err != nil && !a.closing.Load() {
			a.log.Error("outbound queue stopped", "err", err)
			a.fail(fmt.Errorf("outbound queue stopped: %w", err))
		}
	}()
	go func() {
		defer a.jobs.Done()
		a.retentionLoop(bg)
	}()
	return out, nil
}

// Shutdown stops accepting, lets sessions end (each front end says BYE),
// stops the background jobs and closes the store. ctx bounds the wait.
func (a *App) Shutdown(ctx context.Context) error {
	a.closing.Store(true)
	a.mu.Lock()
	started := a.started
	a.mu.Unlock()
	var errs []error
	if started {
		// Each distinct server once, in parallel: imap and imaps share one.
		seen := map[FrontEnd]bool{}
		var wg sync.WaitGroup
		var emu sync.Mutex
		for name, fe := range a.frontEnds {
			if seen[fe] {
				continue
			}
			seen[fe] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := fe.Shutdown(ctx); err != nil {
					emu.Lock()
					errs = append(errs, fmt.Errorf("shut down %s: %w", name, err))
					emu.Unlock()
				}
			}()
		}
		wg.Wait()
		// A Serve goroutine that had not yet registered its listener
		// with its server when Shutdown ran would block forever;
		// closing every listener here ends it (double close is harmless).
		a.mu.Lock()
		for _, ln := range a.listeners {
			ln.Close()
		}
		a.mu.Unlock()
		a.stop()
		done := make(chan struct{})
		go func() { a.jobs.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("waiting for background jobs: %w", ctx.Err()))
		}
	}
	if err := a.Store.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close store: %w", err))
	}
	return errors.Join(errs...)
}
