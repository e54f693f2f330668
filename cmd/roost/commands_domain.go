package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
)

func domainCommands() []command {
	return []command{
		{"domain add", "DOMAIN", "serve mail for a domain", domainAdd},
		{"domain list", "", "list served domains", domainList},
		{"domain del", "DOMAIN", "stop serving a domain (must have no accounts or aliases)", domainDel},
	}
}

func domainAdd(e *env, args []string) error {
	return withStore(args, newFlags("domain add"), 1, 1, func(ctx context.Context, _ *config.Config, st mailstore.Store, pos []string) error {
		name := strings.ToLower(pos[0])
		if err := st.AddDomain(ctx, name); err != nil {
			if errors.Is(err, mailstore.ErrExists) {
				return fmt.Errorf("domain %s already exists", name)
			}
			return fmt.Errorf("add domain %s: %w", name, err)
		}
		return nil
	})
}

func domainList(e *env, args []string) error {
	return withStore(args, newFlags("domain list"), 0, 0, func(ctx context.Context, _ *config.Config, st mailstore.Store, _ []string) error {
		ds, err := st.ListDomains(ctx)
		if err != nil {
			return fmt.Errorf("list domains: %w", err)
		}
		for _, d := range ds {
			fmt.Fprintln(e.stdout, d.Name)
		}
		return nil
	})
}

func domainDel(e *env, args []string) error {
	return withStore(args, newFlags("domain del"), 1, 1, func(ctx context.Context, _ *config.Config, st mailstore.Store, pos []string) error {
		err := st.DeleteDomain(ctx, pos[0])
		switch {
		case errors.Is(err, mailstore.ErrNotEmpty):
			return fmt.Errorf("domain %s still has accounts or aliases; delete them first", pos[0])
		case errors.Is(err, mailstore.ErrNoSuchDomain):
			return fmt.Errorf("no domain %s", pos[0])
		case err != nil:
			return fmt.Errorf("delete domain %s: %w", pos[0], err)
		}
		return nil
	})
}
