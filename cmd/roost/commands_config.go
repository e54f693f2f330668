package main

import (
	"context"
	"fmt"

	"github.com/roost-mail/roost/internal/app"
	"github.com/roost-mail/roost/internal/tlsutil"
)

func configCommands() []command {
	return []command{
		{"config check", "", "load and validate the configuration, and load its TLS certificate files", configCheck},
		{"version", "", "print the version", version},
		{"migrate", "", "create or upgrade the store's schema (also done at every start)", migrate},
	}
}

func configCheck(e *env, args []string) error {
	f := newFlags("config check")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	cfg, src, err := f.loadConfig()
	if err != nil {
		return err
	}
	// Validation only sees that both are set; serve refuses to start if
	// the pair does not load, so the check must load it too.
	if cfg.TLS.CertFile != "" || cfg.TLS.KeyFile != "" {
		if err := tlsutil.CheckFiles(cfg.TLS.CertFile, cfg.TLS.KeyFile); err != nil {
			return fmt.Errorf("%s: %w", src, err)
		}
	}
	fmt.Fprintf(e.stdout, "ok: %s\n", src)
	return nil
}

func version(e *env, args []string) error {
	if _, err := newFlags("version").parse(args, 0, 0); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "roost %s\n", app.Version())
	return nil
}

func migrate(e *env, args []string) error {
	f := newFlags("migrate")
	if _, err := f.parse(args, 0, 0); err != nil {
		return err
	}
	cfg, _, err := f.loadConfig()
	if err != nil {
		return err
	}
	if err := app.Migrate(context.Background(), cfg); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "ok: %s store schema is current\n", cfg.Store.Backend)
	return nil
}
