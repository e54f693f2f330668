package web

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/roost-mail/roost/internal/storage/sqlite"
)

// start serves s on 127.0.0.1 and returns its base URL.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln, false) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Shutdown(ctx); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v after Shutdown", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestHealthAndMetrics(t *testing.T) {
	st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	extra := prometheus.NewCounter(prometheus.CounterOpts{Name: "roost_test_things_total", Help: "test"})
	extra.Add(3)
	s, err := New(Options{
		Version:    "v1.2.3",
		Health:     func(ctx context.Context) error { _, err := st.ListDomains(ctx); return err },
		Collectors: []prometheus.Collector{extra},
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	base := start(t, s)

	if code, body := get(t, base+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	code, body := get(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("metrics: %d", code)
	}
	for _, want := range []string{
		`roost_build_info{goversion="go`, `version="v1.2.3"} 1`,
		"roost_store_up 1",
		"roost_test_things_total 3",
		"go_goroutines ",
		"process_resident_memory_bytes ",
		`roost_http_requests_total{code="200",path="/healthz"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if code, _ := get(t, base+"/nope"); code != 404 {
		t.Fatalf("unknown path: %d", code)
	}
	if resp, err := http.Post(base+"/healthz", "text/plain", nil); err != nil || resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST /healthz: %v %v", resp.StatusCode, err)
	}

	// The store goes away: health and the gauge say so, without details.
	st.Close()
	if code, body := get(t, base+"/healthz"); code != 503 || body != "store unavailable\n" {
		t.Fatalf("healthz with the store closed: %d %q", code, body)
	}
	if _, body := get(t, base+"/metrics"); !strings.Contains(body, "roost_store_up 0") || !strings.Contains(body, `path="other"`) {
		t.Fatal("metrics do not show the store down or the unknown path")
	}
}

func TestOwnRegistry(t *testing.T) {
	// Two servers in one process must not collide (no global registry).
	for range 2 {
		if _, err := New(Options{}, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatal(err)
		}
	}
	dup := prometheus.NewGauge(prometheus.GaugeOpts{Name: "roost_build_info", Help: "clash"})
	if _, err := New(Options{Collectors: []prometheus.Collector{dup}}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("duplicate metric accepted")
	}
}

func TestWrapAndShutdown(t *testing.T) {
	s, err := New(Options{Wrap: func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/.well-known/acme-challenge/x" {
				io.WriteString(w, "token")
				return
			}
			h.ServeHTTP(w, r)
		})
	}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	done := make(chan error, 1)
	go func() { done <- s.Serve(ln, false) }()
	base := "http://" + ln.Addr().String()
	if _, body := get(t, base+"/.well-known/acme-challenge/x"); body != "token" {
		t.Fatalf("wrapped handler not used: %q", body)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatal("inner handler lost")
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Fatal("listener still accepting after Shutdown")
	}
	// Serve after Shutdown refuses at once.
	ln2, _ := net.Listen("tcp", "127.0.0.1:0")
	if err := s.Serve(ln2, false); err == nil {
		t.Fatal("Serve after Shutdown succeeded")
	}
}
