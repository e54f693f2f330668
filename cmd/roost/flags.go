package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/roost-mail/roost/internal/app"
	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
)

// defaultConfigFile is read when neither --config nor $ROOST_CONFIG says
// otherwise; its absence means all defaults.
const defaultConfigFile = "roost.toml"

// flags is a subcommand's flag set with the common --config flag.
type flags struct {
	*flag.FlagSet
	config string
}

func newFlags(name string) *flags {
	f := &flags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError)}
	f.SetOutput(io.Discard) // errors are reported by run, on one line
	f.StringVar(&f.config, "config", "", "configuration file")
	return f
}

// parse accepts flags before, between and after positional arguments
// (`roost user add bob@example.test --password-stdin`) and checks the
// number of positionals.
func (f *flags) parse(args []string, min, max int) ([]string, error) {
	var pos []string
	for {
		if err := f.Parse(args); err != nil {
			return nil, usageError("%s: %v", f.Name(), err)
		}
		args = f.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) < min || (max >= 0 && len(pos) > max) {
		return nil, usageError("%s: wrong number of arguments", f.Name())
	}
	return pos, nil
}

// loadConfig finds and loads the configuration: --config, else
// $ROOST_CONFIG (both must exist), else ./roost.toml if present, else the
// defaults. It returns a description of the source for messages.
func (f *flags) loadConfig() (*config.Config, string, error) {
	path, explicit := f.config, f.config != ""
	if !explicit {
		if env := os.Getenv("ROOST_CONFIG"); env != "" {
			path, explicit = env, true
		} else {
			path = defaultConfigFile
		}
	}
	cfg, err := config.Load(path)
	if err == nil {
		return cfg, path, nil
	}
	if !explicit && errors.Is(err, fs.ErrNotExist) {
		cfg = config.Defaults()
		if err := cfg.Validate(); err != nil {
			return nil, "", fmt.Errorf("defaults: %w", err)
		}
		return cfg, "defaults (no " + defaultConfigFile + ")", nil
	}
	return nil, "", err
}

// openStore loads the configuration and opens its store; the caller
// closes it.
func (f *flags) openStore(ctx context.Context) (*config.Config, mailstore.Store, error) {
	cfg, _, err := f.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	st, err := app.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, nil, err
	}
	return cfg, st, nil
}

// withStore runs fn with the configured store open.
func withStore(args []string, f *flags, min, max int, fn func(ctx context.Context, cfg *config.Config, st mailstore.Store, pos []string) error) error {
	pos, err := f.parse(args, min, max)
	if err != nil {
		return err
	}
	ctx := context.Background()
	cfg, st, err := f.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(ctx, cfg, st, pos)
}

// account resolves an account argument (an account name or an alias).
func account(ctx context.Context, st mailstore.Store, name string) (mailstore.Account, error) {
	a, err := st.ResolveAddress(ctx, strings.ToLower(name))
	if errors.Is(err, mailstore.ErrNoSuchAccount) || errors.Is(err, mailstore.ErrInvalidName) {
		return a, fmt.Errorf("no account %s", name)
	}
	return a, err
}
