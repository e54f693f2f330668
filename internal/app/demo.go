package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/roost-mail/roost/internal/auth"
	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
)

// Demo account made in an empty store so that `roost serve` on a fresh
// machine can be tried at once. example.test is reserved (RFC 2606
// section 2): mail can never really be routed to it.
const (
	DemoDomain  = "example.test"
	DemoAccount = "demo@" + DemoDomain
)

// EnsureDemo creates DemoAccount (and DemoDomain if missing) with a random
// password when the store has no accounts at all, and returns the
// password; "" when it did nothing or another node made the account
// first.
func EnsureDemo(ctx context.Context, st mailstore.Store, cfg *config.Config) (string, error) {
	accts, err := st.ListAccounts(ctx)
	if err != nil {
		return "", fmt.Errorf("demo account: %w", err)
	}
	if len(accts) > 0 {
		return "", nil
	}
	pw := GeneratePassword()
	h, err := auth.HashPassword(pw, AuthParams(cfg))
	if err != nil {
		return "", err
	}
	if err := st.AddDomain(ctx, DemoDomain); err != nil && !errors.Is(err, mailstore.ErrExists) {
		return "", fmt.Errorf("demo domain: %w", err)
	}
	_, err = st.AddAccount(ctx, DemoAccount, h)
	if errors.Is(err, mailstore.ErrExists) {
		// Another node (or process on this data dir) found the store
		// empty too and made it first; it prints the password.
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("demo account: %w", err)
	}
	return pw, nil
}

// GeneratePassword makes a random password: 26 characters of base32,
// 128 bits (crypto/rand.Text).
func GeneratePassword() string {
	return rand.Text()
}
