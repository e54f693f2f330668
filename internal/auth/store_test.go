package auth

import (
	"context"
	"errors"
	"testing"

	"github.com/roost-mail/roost/internal/storage/sqlite"
)

// TestWithSQLiteStore runs logins against the real embedded store: alias
// resolution, a password change through the store, and SCRAM with a
// verifier that went through the database.
func TestWithSQLiteStore(t *testing.T) {
	st, err := sqlite.Open(t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	p := testParams()
	h, _ := HashPassword("first pw", p)
	if err := st.AddDomain(ctx, "example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AddAccount(ctx, "alice@example.test", h); err != nil {
		t.Fatal(err)
	}
	if err := st.AddAlias(ctx, "info@example.test", "alice@example.test"); err != nil {
		t.Fatal(err)
	}
	a := New(st, p)
	for _, login := range []string{"alice@example.test", "Info@Example.Test"} {
		if acct, err := a.Authenticate(ctx, login, "first pw"); err != nil || acct.Name != "alice@example.test" {
			t.Fatalf("%s: %+v %v", login, acct, err)
		}
	}
	c := &scramClient{user: "alice@example.test#laptop", password: "first pw", cnonce: "zz"}
	if srv, err := scramLogin(t, a, c, true); err != nil || srv.Account().Name != "alice@example.test" {
		t.Fatalf("SCRAM over sqlite: %v", err)
	}

	h2, _ := HashPassword("second pw", p)
	if err := st.SetPassword(ctx, "alice@example.test", h2); err != nil {
		t.Fatal(err)
	}
	// No Invalidate: the cached success must still not outlive the change.
	if _, err := a.Authenticate(ctx, "alice@example.test", "first pw"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("old password after SetPassword: %v", err)
	}
	if _, err := a.Authenticate(ctx, "alice@example.test", "second pw"); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteAccount(ctx, "alice@example.test"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(ctx, "alice@example.test", "second pw"); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("deleted account logged in: %v", err)
	}
}
