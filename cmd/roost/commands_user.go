package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/roost-mail/roost/internal/app"
	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
)

func userCommands() []command {
	return []command{
		{"user add", "ACCOUNT [--password-stdin]", "create an account (prints a generated password unless --password-stdin)", userAdd},
		{"user list", "", "list accounts with their message count and size", userList},
		{"user passwd", "ACCOUNT [--password-stdin]", "set a new password (generated unless --password-stdin)", userPasswd},
		{"user del", "ACCOUNT", "delete an account, its mail and its aliases", userDel},
	}
}

// maxPassword bounds a password read from stdin, in bytes.
const maxPassword = 4096

// password returns the password to set: one line from stdin with
// --password-stdin (at most maxPassword bytes), else a generated one
// (printed by the caller once).
func password(e *env, fromStdin bool) (pw string, generated bool, err error) {
	if !fromStdin {
		return app.GeneratePassword(), true, nil
	}
	// Room for the line end after the longest password: a longer line
	// shows up as more than maxPassword bytes, and is refused rather than
	// cut short to a password the operator never meant.
	line, err := bufio.NewReader(io.LimitReader(e.stdin, maxPassword+2)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", false, fmt.Errorf("read password: %w", err)
	}
	pw = strings.TrimRight(line, "\r\n")
	if pw == "" {
		return "", false, errors.New("empty password on stdin")
	}
	if len(pw) > maxPassword {
		return "", false, fmt.Errorf("password longer than %d bytes", maxPassword)
	}
	return pw, false, nil
}

func userAdd(e *env, args []string) error {
	f := newFlags("user add")
	stdin := f.Bool("password-stdin", false, "read the password from the first line of stdin")
	return withStore(args, f, 1, 1, func(ctx context.Context, cfg *config.Config, st mailstore.Store, pos []string) error {
		name, err := mailstore.NormalizeAddress(pos[0])
		if err != nil {
			return fmt.Errorf("%q is not an address like user@example.test", pos[0])
		}
		// Refuse early, before a password is read or printed; AddAccount
		// checks again inside its transaction.
		if _, err := st.ResolveAddress(ctx, name); err == nil {
			return fmt.Errorf("%s already exists (as an account or an alias)", name)
		}
		pw, generated, err := password(e, *stdin)
		if err != nil {
			return err
		}
		h, err := auth.HashPassword(pw, app.AuthParams(cfg))
		if err != nil {
			return err
		}
		_, err = st.AddAccount(ctx, name, h)
		switch {
		case errors.Is(err, mailstore.ErrNoSuchDomain):
			_, dom, _ := strings.Cut(name, "@")
			return fmt.Errorf("domain %s is not served here; add it first with: roost domain add %s", dom, dom)
		case errors.Is(err, mailstore.ErrExists):
			return fmt.Errorf("%s already exists (as an account or an alias)", name)
		case err != nil:
			return fmt.Errorf("add %s: %w", name, err)
		}
		if generated {
			fmt.Fprintf(e.stdout, "password for %s: %s\n", name, pw)
		}
		return nil
	})
}

func userList(e *env, args []string) error {
	return withStore(args, newFlags("user list"), 0, 0, func(ctx context.Context, _ *config.Config, st mailstore.Store, _ []string) error {
		as, err := st.ListAccounts(ctx)
		if err != nil {
			return fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range as {
			fmt.Fprintf(e.stdout, "%s\t%d messages\t%d bytes\n", a.Name, a.UsedMessages, a.UsedBytes)
		}
		return nil
	})
}

func userPasswd(e *env, args []string) error {
	f := newFlags("user passwd")
	stdin := f.Bool("password-stdin", false, "read the password from the first line of stdin")
	return withStore(args, f, 1, 1, func(ctx context.Context, cfg *config.Config, st mailstore.Store, pos []string) error {
		acct, err := account(ctx, st, pos[0])
		if err != nil {
			return err
		}
		pw, generated, err := password(e, *stdin)
		if err != nil {
			return err
		}
		h, err := auth.HashPassword(pw, app.AuthParams(cfg))
		if err != nil {
			return err
		}
		// A running server notices the new hash at the next login: its
		// auth cache compares the stored hash.
		if err := st.SetPassword(ctx, acct.Name, h); err != nil {
			return fmt.Errorf("set password of %s: %w", acct.Name, err)
		}
		if generated {
			fmt.Fprintf(e.stdout, "password for %s: %s\n", acct.Name, pw)
		}
		return nil
	})
}

func userDel(e *env, args []string) error {
	return withStore(args, newFlags("user del"), 1, 1, func(ctx context.Context, _ *config.Config, st mailstore.Store, pos []string) error {
		err := st.DeleteAccount(ctx, strings.ToLower(pos[0]))
		if errors.Is(err, mailstore.ErrNoSuchAccount) {
			return fmt.Errorf("no account %s", pos[0])
		}
		if err != nil {
			return fmt.Errorf("delete %s: %w", pos[0], err)
		}
		return nil
	})
}
