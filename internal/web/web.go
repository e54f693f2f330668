// Package web owns Roost's HTTP listener: /healthz (is the store
// reachable) and Prometheus /metrics from a registry of its own, so that
// nothing registered globally by a library leaks into Roost's metrics.
// Later: autoconfig/autodiscover and the admin API.
//
// web knows no store backend and no protocol server: the composition root
// hands it a health check and the collectors to expose.
package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure the HTTP front end.
type Options struct {
	// Version is reported by roost_build_info.
	Version string
	// Health checks that the store answers; nil: always healthy.
	Health func(ctx context.Context) error
	// Collectors are extra metrics (store, auth, protocol servers).
	Collectors []prometheus.Collector
	// Wrap, if set, wraps the handler (ACME http-01 challenges).
	Wrap func(http.Handler) http.Handler
}

// healthTimeout bounds one store check so a hung store answers 503 rather
// than hanging the prober.
const healthTimeout = 3 * time.Second

// Server is the HTTP front end.
type Server struct {
	opts     Options
	log      *slog.Logger
	registry *prometheus.Registry
	handler  http.Handler
	requests *prometheus.CounterVec

	mu      sync.Mutex
	servers []*http.Server // guarded by mu: one per Serve call
	closed  bool
}

// New builds the handler and its metrics registry. It fails only if two
// collectors register the same metric.
func New(opts Options, log *slog.Logger) (*Server, error) {
	s := &Server{opts: opts, log: log, registry: prometheus.NewRegistry()}
	s.requests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "roost_http_requests_total",
		Help: "HTTP requests served, by path and status code.",
	}, []string{"path", "code"})
	build := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "roost_build_info",
		Help:        "Always 1; labels say which build runs.",
		ConstLabels: prometheus.Labels{"version": opts.Version, "goversion": runtime.Version()},
	})
	build.Set(1)
	storeUp := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "roost_store_up",
		Help: "1 if the mail store answered a health check at scrape time, else 0.",
	}, func() float64 {
		if s.check(context.Background()) != nil {
			return 0
		}
		return 1
	})
	cs := []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		build, storeUp, s.requests,
	}
	for _, c := range append(cs, opts.Collectors...) {
		if err := s.registry.Register(c); err != nil {
			return nil, fmt.Errorf("web: register metrics: %w", err)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}))
	var h http.Handler = s.count(mux)
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	s.handler = h
	return s, nil
}

// Handler is the complete HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Registry is the metrics registry (for front ends' collectors added
// after New).
func (s *Server) Registry() *prometheus.Registry { return s.registry }

func (s *Server) check(ctx context.Context) error {
	if s.opts.Health == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, healthTimeout)
	defer cancel()
	return s.opts.Health(ctx)
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := s.check(r.Context()); err != nil {
		// The reason goes to the log, not to whoever asks.
		s.log.Warn("health check failed", "err", err)
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "store unavailable")
		return
	}
	fmt.Fprintln(w, "ok")
}

// count records requests by path (only the known paths, so that a scan
// of random URLs cannot grow the label set without bound).
func (s *Server) count(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		path := r.URL.Path
		if path != "/healthz" && path != "/metrics" {
			path = "other"
		}
		s.requests.WithLabelValues(path, strconv.Itoa(rec.code)).Inc()
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.code = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Serve answers HTTP on ln until Shutdown; implicitTLS is not supported
// for this listener yet (put a TLS proxy in front for HTTPS).
func (s *Server) Serve(ln net.Listener, implicitTLS bool) error {
	if implicitTLS {
		return errors.New("web: TLS on the http listener is not supported")
	}
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting, lets requests in flight finish until ctx
// ends, then closes what remains.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	servers := s.servers
	s.mu.Unlock()
	var errs []error
	for _, srv := range servers {
		if err := srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
			srv.Close()
		}
	}
	return errors.Join(errs...)
}
