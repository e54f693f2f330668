package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/roost-mail/roost/internal/mailstore"
)

func normalizeDomain(name string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(name))
	if d == "" || strings.ContainsAny(d, " \t\r\n@<>/\\") {
		return "", fmt.Errorf("%w: domain %q", mailstore.ErrInvalidName, name)
	}
	return d, nil
}

func (s *Store) AddDomain(ctx context.Context, name string) error {
	d, err := normalizeDomain(name)
	if err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		_, err := w.Exec(ctx, "INSERT INTO domains (name, created) VALUES ($1, $2)", d, time.Now())
		if pgCode(err) == codeUniqueViolation {
			return fmt.Errorf("domain %s: %w", d, mailstore.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: add domain: %w", err)
		}
		return nil
	})
}

func (s *Store) ListDomains(ctx context.Context) ([]mailstore.Domain, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT name, created FROM domains ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("postgres: list domains: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.Domain, error) {
		var d mailstore.Domain
		err := r.Scan(&d.Name, &d.Created)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list domains: %w", err)
	}
	return out, nil
}

func (s *Store) DeleteDomain(ctx context.Context, name string) error {
	d, err := normalizeDomain(name)
	if err != nil {
		return err
	}
	return s.write(ctx, func(w *wtx) error {
		// Lock the domain row so a concurrent AddAccount (whose foreign
		// key check takes a share lock on it) cannot slip in between the
		// emptiness check and the delete.
		var one int
		err := w.QueryRow(ctx, "SELECT 1 FROM domains WHERE name = $1 FOR UPDATE", d).Scan(&one)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("domain %s: %w", d, mailstore.ErrNoSuchDomain)
		}
		if err != nil {
			return fmt.Errorf("postgres: delete domain: %w", err)
		}
		var used bool
		err = w.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE domain = $1)
			OR EXISTS (SELECT 1 FROM aliases WHERE domain = $1)`, d).Scan(&used)
		if err != nil {
			return fmt.Errorf("postgres: delete domain: %w", err)
		}
		if used {
			return fmt.Errorf("domain %s: %w", d, mailstore.ErrNotEmpty)
		}
		if _, err := w.Exec(ctx, "DELETE FROM domains WHERE name = $1", d); err != nil {
			return fmt.Errorf("postgres: delete domain: %w", err)
		}
		return nil
	})
}

const accountCols = "id, name, domain, password_hash, quota_bytes, quota_messages, used_bytes, used_messages, created"

func scanAccount(r pgx.Row) (mailstore.Account, error) {
	var a mailstore.Account
	err := r.Scan(&a.ID, &a.Name, &a.Domain, &a.PasswordHash, &a.QuotaBytes, &a.QuotaMessages, &a.UsedBytes, &a.UsedMessages, &a.Created)
	return a, err
}

// addressLockClass is the first key of the pg_advisory_xact_lock(int4,
// int4) lock that AddAccount and AddAlias take on an address (the second
// key is the address's hashtext). An address must not become both an
// account and an alias, but each transaction only reads the other table,
// and at READ COMMITTED two of them (on two nodes, or two pool
// connections) can each see the other's row missing and both insert.
// Row locks cannot help: the row to lock does not exist yet. The two-key
// form is a key space of its own, apart from the single-bigint one that
// migrationLockKey uses, so the two can never collide; hash collisions
// between addresses only make two unrelated adds wait for each other.
const addressLockClass int32 = 0x61646472 // "addr"

// lockAddress serialises every directory write that must see the
// account and alias tables agree about addr; it must be the first
// statement of the transaction so no snapshot predates the lock.
func lockAddress(w *wtx, addr string) error {
	if _, err := w.Exec(w.ctx, "SELECT pg_advisory_xact_lock($1::int4, hashtext($2))", addressLockClass, addr); err != nil {
		return fmt.Errorf("postgres: lock address %s: %w", addr, err)
	}
	return nil
}

func (s *Store) AddAccount(ctx context.Context, name, passwordHash string) (mailstore.Account, error) {
	addr, err := mailstore.NormalizeAddress(name)
	if err != nil {
		return mailstore.Account{}, err
	}
	_, domain, _ := strings.Cut(addr, "@")
	var acct mailstore.Account
	err = s.write(ctx, func(w *wtx) error {
		if err := lockAddress(w, addr); err != nil {
			return err
		}
		var exists bool
		if err := w.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM domains WHERE name = $1 FOR SHARE)", domain).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: add account: %w", err)
		}
		if !exists {
			return fmt.Errorf("domain %s: %w", domain, mailstore.ErrNoSuchDomain)
		}
		if err := w.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM aliases WHERE address = $1)", addr).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: add account: %w", err)
		}
		if exists {
			return fmt.Errorf("%s is an alias: %w", addr, mailstore.ErrExists)
		}
		// The new account's first modseq (1) covers the creation of its
		// default mailboxes, so every mailbox's HIGHESTMODSEQ is >= 1
		// (RFC 7162 section 3.1.2.1 has no HIGHESTMODSEQ 0 for a
		// CONDSTORE mailbox).
		a, err := scanAccount(w.QueryRow(ctx, `INSERT INTO accounts (name, domain, password_hash, modseq, created)
			VALUES ($1, $2, $3, 1, $4) RETURNING `+accountCols, addr, domain, passwordHash, time.Now()))
		if pgCode(err) == codeUniqueViolation {
			return fmt.Errorf("account %s: %w", addr, mailstore.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: add account: %w", err)
		}
		for _, mb := range mailstore.DefaultMailboxes {
			if _, err := w.Exec(ctx, `INSERT INTO mailboxes (account_id, name, special_use, uidvalidity, highestmodseq, modseq, subscribed)
				VALUES ($1, $2, $3, nextval('uidvalidity_seq'), 1, 1, true)`, a.ID, mb.Name, mb.SpecialUse); err != nil {
				return fmt.Errorf("postgres: add account mailboxes: %w", err)
			}
		}
		acct = a
		return nil
	})
	return acct, err
}

func (s *Store) GetAccount(ctx context.Context, name string) (mailstore.Account, error) {
	q, err := s.db()
	if err != nil {
		return mailstore.Account{}, err
	}
	n := strings.ToLower(strings.TrimSpace(name))
	a, err := scanAccount(q.QueryRow(ctx, "SELECT "+accountCols+" FROM accounts WHERE name = $1", n))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("account %s: %w", n, mailstore.ErrNoSuchAccount)
	}
	if err != nil {
		return a, fmt.Errorf("postgres: get account: %w", err)
	}
	return a, nil
}

func (s *Store) GetAccountByID(ctx context.Context, id int64) (mailstore.Account, error) {
	q, err := s.db()
	if err != nil {
		return mailstore.Account{}, err
	}
	a, err := scanAccount(q.QueryRow(ctx, "SELECT "+accountCols+" FROM accounts WHERE id = $1", id))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("account %d: %w", id, mailstore.ErrNoSuchAccount)
	}
	if err != nil {
		return a, fmt.Errorf("postgres: get account: %w", err)
	}
	return a, nil
}

func (s *Store) ListAccounts(ctx context.Context) ([]mailstore.Account, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT "+accountCols+" FROM accounts ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("postgres: list accounts: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.Account, error) { return scanAccount(r) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list accounts: %w", err)
	}
	return out, nil
}

func (s *Store) SetPassword(ctx context.Context, name, passwordHash string) error {
	n := strings.ToLower(strings.TrimSpace(name))
	return s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, "UPDATE accounts SET password_hash = $2 WHERE name = $1", n, passwordHash)
		if err != nil {
			return fmt.Errorf("postgres: set password: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("account %s: %w", n, mailstore.ErrNoSuchAccount)
		}
		return nil
	})
}

func (s *Store) SetQuota(ctx context.Context, name string, bytes, messages int64) error {
	n := strings.ToLower(strings.TrimSpace(name))
	if bytes < 0 || messages < 0 {
		return fmt.Errorf("%w: negative quota", mailstore.ErrInvalidName)
	}
	return s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, "UPDATE accounts SET quota_bytes = $2, quota_messages = $3 WHERE name = $1", n, bytes, messages)
		if err != nil {
			return fmt.Errorf("postgres: set quota: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("account %s: %w", n, mailstore.ErrNoSuchAccount)
		}
		return nil
	})
}

// DeleteAccount removes the account, its mail (including the retention
// area: the account is gone, nothing could restore into it), its queue
// references stay (the queue holds its own blob references), and its
// aliases.
func (s *Store) DeleteAccount(ctx context.Context, name string) error {
	n := strings.ToLower(strings.TrimSpace(name))
	return s.write(ctx, func(w *wtx) error {
		var id int64
		err := w.QueryRow(ctx, "SELECT id FROM accounts WHERE name = $1", n).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("account %s: %w", n, mailstore.ErrNoSuchAccount)
		}
		if err != nil {
			return fmt.Errorf("postgres: delete account: %w", err)
		}
		if err := w.lockAccounts(id); err != nil {
			return err
		}
		// The references dropped are those of the rows this statement
		// deletes, not of an earlier read: Purge takes no account lock
		// and may delete (and dereference) a retention row of this
		// account at the same time. DELETE waits for its row lock and
		// skips a row Purge removed, so a blob is never dereferenced
		// twice (which would free the bytes of another account's copy).
		rows, err := w.Query(ctx, `WITH m AS (DELETE FROM messages WHERE account_id = $1 RETURNING blob_id),
			d AS (DELETE FROM deleted_messages WHERE account_id = $1 RETURNING blob_id)
			SELECT blob_id FROM m UNION ALL SELECT blob_id FROM d`, id)
		if err != nil {
			return fmt.Errorf("postgres: delete account: %w", err)
		}
		blobs, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("postgres: delete account: %w", err)
		}
		if err := changeBlobRefs(w, blobs, -1); err != nil {
			return err
		}
		for _, q := range []string{
			"DELETE FROM tombstones WHERE account_id = $1",
			"DELETE FROM pop_hidden WHERE account_id = $1",
			"DELETE FROM accounts WHERE id = $1", // cascades to mailboxes and aliases
		} {
			if _, err := w.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("postgres: delete account: %w", err)
			}
		}
		return nil
	})
}

func (s *Store) AddAlias(ctx context.Context, address, account string) error {
	addr, err := mailstore.NormalizeAddress(address)
	if err != nil {
		return err
	}
	_, domain, _ := strings.Cut(addr, "@")
	target := strings.ToLower(strings.TrimSpace(account))
	return s.write(ctx, func(w *wtx) error {
		if err := lockAddress(w, addr); err != nil {
			return err
		}
		var exists bool
		if err := w.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM domains WHERE name = $1 FOR SHARE)", domain).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: add alias: %w", err)
		}
		if !exists {
			return fmt.Errorf("domain %s: %w", domain, mailstore.ErrNoSuchDomain)
		}
		var id int64
		err := w.QueryRow(ctx, "SELECT id FROM accounts WHERE name = $1", target).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("account %s: %w", target, mailstore.ErrNoSuchAccount)
		}
		if err != nil {
			return fmt.Errorf("postgres: add alias: %w", err)
		}
		if err := w.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM accounts WHERE name = $1)", addr).Scan(&exists); err != nil {
			return fmt.Errorf("postgres: add alias: %w", err)
		}
		if exists {
			return fmt.Errorf("%s is an account: %w", addr, mailstore.ErrExists)
		}
		_, err = w.Exec(ctx, "INSERT INTO aliases (address, domain, account_id) VALUES ($1, $2, $3)", addr, domain, id)
		if pgCode(err) == codeUniqueViolation {
			return fmt.Errorf("alias %s: %w", addr, mailstore.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: add alias: %w", err)
		}
		return nil
	})
}

func (s *Store) ListAliases(ctx context.Context) ([]mailstore.Alias, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT al.address, al.account_id, a.name FROM aliases al JOIN accounts a ON a.id = al.account_id ORDER BY al.address")
	if err != nil {
		return nil, fmt.Errorf("postgres: list aliases: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mailstore.Alias, error) {
		var a mailstore.Alias
		err := r.Scan(&a.Address, &a.AccountID, &a.Account)
		return a, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list aliases: %w", err)
	}
	return out, nil
}

func (s *Store) DeleteAlias(ctx context.Context, address string) error {
	addr := strings.ToLower(strings.TrimSpace(address))
	return s.write(ctx, func(w *wtx) error {
		tag, err := w.Exec(ctx, "DELETE FROM aliases WHERE address = $1", addr)
		if err != nil {
			return fmt.Errorf("postgres: delete alias: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("alias %s: %w", addr, mailstore.ErrNoSuchAlias)
		}
		return nil
	})
}

func (s *Store) ResolveAddress(ctx context.Context, address string) (mailstore.Account, error) {
	q, err := s.db()
	if err != nil {
		return mailstore.Account{}, err
	}
	addr := strings.ToLower(strings.TrimSpace(address))
	// The account wins over an alias of the same address, as on SQLite.
	// AddAccount and AddAlias keep the two apart, but a database written
	// before they did may hold both, and UNION ALL alone promises no
	// order for LIMIT 1 to rely on.
	a, err := scanAccount(q.QueryRow(ctx, "SELECT "+accountCols+` FROM (
		SELECT `+accountCols+`, 0 AS rank FROM accounts WHERE name = $1
		UNION ALL SELECT `+prefixCols("a.", accountCols)+`, 1 FROM aliases al JOIN accounts a ON a.id = al.account_id WHERE al.address = $1
		) r ORDER BY rank LIMIT 1`, addr))
	if errors.Is(err, pgx.ErrNoRows) {
		return a, fmt.Errorf("address %s: %w", addr, mailstore.ErrNoSuchAccount)
	}
	if err != nil {
		return a, fmt.Errorf("postgres: resolve address: %w", err)
	}
	return a, nil
}

func prefixCols(prefix, cols string) string {
	parts := strings.Split(cols, ", ")
	for i, p := range parts {
		parts[i] = prefix + p
	}
	return strings.Join(parts, ", ")
}
