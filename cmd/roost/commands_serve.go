package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/roost-mail/roost/internal/app"
)

// shutdownGrace bounds a graceful shutdown after SIGTERM/SIGINT.
const shutdownGrace = 30 * time.Second

func serveCommands() []command {
	return []command{
		{"serve", "", "run the mail server until SIGTERM or SIGINT", serve},
	}
}

func serve(e *env, args []string) error {
	f := newFlags("serve")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	cfg, src, err := f.loadConfig()
	if err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		return fmt.Errorf("log_level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	log.Info("starting", "version", app.Version(), "config", src, "data_dir", cfg.DataDir)

	// Signals are caught before anything starts so that a SIGTERM during
	// startup still ends in an orderly shutdown.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	a, err := app.New(cfg, log)
	if err != nil {
		return err
	}
	ctx := context.Background()
	pw, err := app.EnsureDemo(ctx, a.Store, cfg)
	if err != nil {
		a.Shutdown(ctx)
		return err
	}
	if pw != "" {
		fmt.Fprintf(e.stdout, "new store: created domain %s and account %s with password %s (shown once)\n", app.DemoDomain, app.DemoAccount, pw)
	}
	if a.Certs.SelfSignedCert != "" {
		fmt.Fprintf(e.stdout, "tls: self-signed certificate %s\n", a.Certs.SelfSignedCert)
	}
	ls, err := a.Start(ctx)
	if err != nil {
		a.Shutdown(ctx)
		return err
	}
	for _, l := range ls {
		fmt.Fprintf(e.stdout, "listening: %s %s\n", l.Name, l.Addr)
	}
	var failed error
	select {
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	case <-a.Failed():
		failed = a.Failure()
		log.Error("shutting down", "err", failed)
	}
	sctx, cancel := context.WithTimeout(ctx, shutdownGrace)
	defer cancel()
	if err := a.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if failed != nil {
		// Exit non-zero so that a supervisor starts it again.
		return failed
	}
	log.Info("stopped")
	return nil
}
