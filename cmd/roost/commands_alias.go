package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
)

func aliasCommands() []command {
	return []command{
		{"alias add", "ADDRESS ACCOUNT", "deliver mail for ADDRESS to ACCOUNT", aliasAdd},
		{"alias list", "", "list aliases", aliasList},
		{"alias del", "ADDRESS", "remove an alias", aliasDel},
	}
}

func aliasAdd(e *env, args []string) error {
	return withStore(args, newFlags("alias add"), 2, 2, func(ctx context.Context, _ *config.Config, st mailstore.Store, pos []string) error {
		addr, err := mailstore.NormalizeAddress(pos[0])
		if err != nil {
			return fmt.Errorf("%q is not an address like info@example.test", pos[0])
		}
		err = st.AddAlias(ctx, addr, strings.ToLower(pos[1]))
		switch {
		case errors.Is(err, mailstore.ErrNoSuchDomain):
			_, dom, _ := strings.Cut(addr, "@")
			return fmt.Errorf("domain %s is not served here; add it first with: roost domain add %s", dom, dom)
		case errors.Is(err, mailstore.ErrNoSuchAccount):
			return fmt.Errorf("no account %s", pos[1])
		case errors.Is(err, mailstore.ErrExists):
			return fmt.Errorf("%s already exists (as an account or an alias)", addr)
		case err != nil:
			return fmt.Errorf("add alias %s: %w", addr, err)
		}
		return nil
	})
}

func aliasList(e *env, args []string) error {
	return withStore(args, newFlags("alias list"), 0, 0, func(ctx context.Context, _ *config.Config, st mailstore.Store, _ []string) error {
		as, err := st.ListAliases(ctx)
		if err != nil {
			return fmt.Errorf("list aliases: %w", err)
		}
		for _, a := range as {
			fmt.Fprintf(e.stdout, "%s\t%s\n", a.Address, a.Account)
		}
		return nil
	})
}

func aliasDel(e *env, args []string) error {
	return withStore(args, newFlags("alias del"), 1, 1, func(ctx context.Context, _ *config.Config, st mailstore.Store, pos []string) error {
		err := st.DeleteAlias(ctx, strings.ToLower(pos[0]))
		if errors.Is(err, mailstore.ErrNoSuchAlias) || errors.Is(err, mailstore.ErrNoSuchAccount) {
			return fmt.Errorf("no alias %s", pos[0])
		}
		if err != nil {
			return fmt.Errorf("delete alias %s: %w", pos[0], err)
		}
		return nil
	})
}
