package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/roost-mail/roost/internal/mailstore"
)

// normalizeDomain lower-cases a domain name and checks its shape.
func normalizeDomain(name string) (string, error) {
	d := strings.ToLower(strings.TrimSpace(name))
	if d == "" || strings.ContainsAny(d, "@ \t\r\n<>/\\") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") || strings.Contains(d, "..") || len(d) > 253 {
		return "", fmt.Errorf("%w: domain %q", mailstore.ErrInvalidName, name)
	}
	return d, nil
}

// isUniqueViolation reports a UNIQUE or PRIMARY KEY constraint failure.
func isUniqueViolation(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}

// AddDomain adds a served domain.
func (s *Store) AddDomain(ctx context.Context, name string) error {
	d, err := normalizeDomain(name)
	if err != nil {
		return err
	}
	return s.update(ctx, func(w *wtx) error {
		_, err := w.exec(`INSERT INTO domains (name, created) VALUES (?, ?)`, d, nanos(w.now))
		if isUniqueViolation(err) {
			return fmt.Errorf("domain %s: %w", d, mailstore.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("add domain: %w", err)
		}
		return nil
	})
}

// ListDomains lists the domains by name.
func (s *Store) ListDomains(ctx context.Context) ([]mailstore.Domain, error) {
	var out []mailstore.Domain
	err := s.readTx(ctx, func(tx *rtx) error {
		rows, err := tx.QueryContext(ctx, `SELECT name, created FROM domains ORDER BY name`)
		if err != nil {
			return fmt.Errorf("list domains: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var d mailstore.Domain
			var created int64
			if err := rows.Scan(&d.Name, &created); err != nil {
				return fmt.Errorf("list domains: %w", err)
			}
			d.Created = fromNanos(created)
			out = append(out, d)
		}
		return rows.Err()
	})
	return out, err
}

// DeleteDomain removes a domain no account or alias uses.
func (s *Store) DeleteDomain(ctx context.Context, name string) error {
	d, err := normalizeDomain(name)
	if err != nil {
		return err
	}
	return s.update(ctx, func(w *wtx) error {
		var inUse bool
		err := w.queryRow(`SELECT EXISTS (SELECT 1 FROM accounts WHERE domain = ?) OR EXISTS (SELECT 1 FROM aliases WHERE domain = ?)`, d, d).Scan(&inUse)
		if err != nil {
			return fmt.Errorf("delete domain: %w", err)
		}
		if inUse {
			return fmt.Errorf("domain %s has accounts or aliases: %w", d, mailstore.ErrNotEmpty)
		}
		res, err := w.exec(`DELETE FROM domains WHERE name = ?`, d)
		if err != nil {
			return fmt.Errorf("delete domain: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("domain %s: %w", d, mailstore.ErrNoSuchDomain)
		}
		return nil
	})
}

const accountCols = `id, name, domain, password_hash, quota_bytes, quota_messages, used_bytes, used_messages, created`

type scanner interface{ Scan(dest ...any) error }

func scanAccount(r scanner) (mailstore.Account, error) {
	var a mailstore.Account
	var created int64
	err := r.Scan(&a.ID, &a.Name, &a.Domain, &a.PasswordHash, &a.QuotaBytes, &a.QuotaMessages, &a.UsedBytes, &a.UsedMessages, &created)
	a.Created = fromNanos(created)
	return a, err
}

// AddAccount creates an account and its default mailboxes.
func (s *Store) AddAccount(ctx context.Context, name, passwordHash string) (mailstore.Account, error) {
	addr, err := mailstore.NormalizeAddress(name)
	if err != nil {
		return mailstore.Account{}, err
	}
	_, domain, _ := strings.Cut(addr, "@")
	var acct mailstore.Account
	err = s.update(ctx, func(w *wtx) error {
		if err := w.requireDomain(domain); err != nil {
			return err
		}
		var taken bool
		if err := w.queryRow(`SELECT EXISTS (SELECT 1 FROM aliases WHERE address = ?)`, addr).Scan(&taken); err != nil {
			return fmt.Errorf("add account: %w", err)
		}
		if taken {
			return fmt.Errorf("account %s: an alias has that address: %w", addr, mailstore.ErrExists)
		}
		row := w.queryRow(`INSERT INTO accounts (name, domain, password_hash, created) VALUES (?, ?, ?, ?)
			RETURNING `+accountCols, addr, domain, passwordHash, nanos(w.now))
		a, err := scanAccount(row)
		if isUniqueViolation(err) {
			return fmt.Errorf("account %s: %w", addr, mailstore.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("add account: %w", err)
		}
		m, err := w.nextModSeq(a.ID)
		if err != nil {
			return err
		}
		for _, mb := range mailstore.DefaultMailboxes {
			// Default mailboxes start subscribed so clients that list
			// subscriptions (LSUB) see them.
			if _, err := w.insertMailbox(a.ID, mb.Name, mb.SpecialUse, true, m); err != nil {
				return err
			}
		}
		acct = a
		return nil
	})
	return acct, err
}

func (w *wtx) requireDomain(domain string) error {
	var ok bool
	if err := w.queryRow(`SELECT EXISTS (SELECT 1 FROM domains WHERE name = ?)`, domain).Scan(&ok); err != nil {
		return fmt.Errorf("look up domain: %w", err)
	}
	if !ok {
		return fmt.Errorf("domain %s: %w", domain, mailstore.ErrNoSuchDomain)
	}
	return nil
}

func accountNotFound(err error, name string) error {
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("account %s: %w", name, mailstore.ErrNoSuchAccount)
	}
	return fmt.Errorf("look up account: %w", err)
}

// GetAccount finds an account by its name (login address).
func (s *Store) GetAccount(ctx context.Context, name string) (mailstore.Account, error) {
	if err := s.checkOpen(); err != nil {
		return mailstore.Account{}, err
	}
	addr := strings.ToLower(strings.TrimSpace(name))
	a, err := scanAccount(s.rd().QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = ?`, addr))
	if err != nil {
		return a, accountNotFound(err, addr)
	}
	return a, nil
}

// GetAccountByID finds an account by id.
func (s *Store) GetAccountByID(ctx context.Context, id int64) (mailstore.Account, error) {
	if err := s.checkOpen(); err != nil {
		return mailstore.Account{}, err
	}
	a, err := scanAccount(s.rd().QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
	if err != nil {
		return a, accountNotFound(err, fmt.Sprint("#", id))
	}
	return a, nil
}

// ListAccounts lists every account by name.
func (s *Store) ListAccounts(ctx context.Context) ([]mailstore.Account, error) {
	var out []mailstore.Account
	err := s.readTx(ctx, func(tx *rtx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts ORDER BY name`)
		if err != nil {
			return fmt.Errorf("list accounts: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			a, err := scanAccount(rows)
			if err != nil {
				return fmt.Errorf("list accounts: %w", err)
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	return out, err
}

// SetPassword replaces an account's password hash.
func (s *Store) SetPassword(ctx context.Context, name, passwordHash string) error {
	addr := strings.ToLower(strings.TrimSpace(name))
	return s.update(ctx, func(w *wtx) error {
		return w.updateAccount(addr, `UPDATE accounts SET password_hash = ? WHERE name = ?`, passwordHash, addr)
	})
}

// SetQuota sets an account's limits (0: unlimited).
func (s *Store) SetQuota(ctx context.Context, name string, bytes, messages int64) error {
	addr := strings.ToLower(strings.TrimSpace(name))
	if bytes < 0 || messages < 0 {
		return fmt.Errorf("%w: negative quota", mailstore.ErrInvalidName)
	}
	return s.update(ctx, func(w *wtx) error {
		return w.updateAccount(addr, `UPDATE accounts SET quota_bytes = ?, quota_messages = ? WHERE name = ?`, bytes, messages, addr)
	})
}

func (w *wtx) updateAccount(name, query string, args ...any) error {
	res, err := w.exec(query, args...)
	if err != nil {
		return fmt.Errorf("update account: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("account %s: %w", name, mailstore.ErrNoSuchAccount)
	}
	return nil
}

// DeleteAccount removes an account with its mailboxes, messages (retained
// ones too), aliases and POP3 state. Queued outbound mail stays queued.
func (s *Store) DeleteAccount(ctx context.Context, name string) error {
	addr := strings.ToLower(strings.TrimSpace(name))
	return s.update(ctx, func(w *wtx) error {
		var id int64
		err := w.queryRow(`SELECT id FROM accounts WHERE name = ?`, addr).Scan(&id)
		if err != nil {
			return accountNotFound(err, addr)
		}
		deltas := map[string]int{}
		rows, err := w.query(`SELECT blob_id, count(*) FROM messages WHERE account_id = ? GROUP BY blob_id
			UNION ALL SELECT blob_id, count(*) FROM deleted_messages WHERE account_id = ? GROUP BY blob_id`, id, id)
		if err != nil {
			return fmt.Errorf("delete account: %w", err)
		}
		for rows.Next() {
			var b string
			var n int
			if err := rows.Scan(&b, &n); err != nil {
				rows.Close()
				return fmt.Errorf("delete account: %w", err)
			}
			deltas[b] -= n
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("delete account: %w", err)
		}
		for _, q := range []string{
			`DELETE FROM messages WHERE account_id = ?`,
			`DELETE FROM deleted_messages WHERE account_id = ?`,
			`DELETE FROM tombstones WHERE account_id = ?`,
			`DELETE FROM pop_hidden WHERE account_id = ?`,
			`DELETE FROM mailboxes WHERE account_id = ?`,
			`DELETE FROM aliases WHERE account_id = ?`,
			`DELETE FROM accounts WHERE id = ?`,
		} {
			if _, err := w.exec(q, id); err != nil {
				return fmt.Errorf("delete account: %w", err)
			}
		}
		if err := s.refBlobs(w, deltas); err != nil {
			return err
		}
		// Wake the account's sessions so they notice it is gone.
		w.changed[id] = max(w.changed[id], 1)
		return nil
	})
}

// AddAlias maps address to an account.
func (s *Store) AddAlias(ctx context.Context, address, account string) error {
	addr, err := mailstore.NormalizeAddress(address)
	if err != nil {
		return err
	}
	_, domain, _ := strings.Cut(addr, "@")
	acct := strings.ToLower(strings.TrimSpace(account))
	return s.update(ctx, func(w *wtx) error {
		if err := w.requireDomain(domain); err != nil {
			return err
		}
		var id int64
		if err := w.queryRow(`SELECT id FROM accounts WHERE name = ?`, acct).Scan(&id); err != nil {
			return accountNotFound(err, acct)
		}
		var taken bool
		if err := w.queryRow(`SELECT EXISTS (SELECT 1 FROM accounts WHERE name = ?)`, addr).Scan(&taken); err != nil {
			return fmt.Errorf("add alias: %w", err)
		}
		if taken {
			return fmt.Errorf("alias %s: an account has that address: %w", addr, mailstore.ErrExists)
		}
		_, err := w.exec(`INSERT INTO aliases (address, domain, account_id) VALUES (?, ?, ?)`, addr, domain, id)
		if isUniqueViolation(err) {
			return fmt.Errorf("alias %s: %w", addr, mailstore.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("add alias: %w", err)
		}
		return nil
	})
}

// ListAliases lists aliases by address.
func (s *Store) ListAliases(ctx context.Context) ([]mailstore.Alias, error) {
	var out []mailstore.Alias
	err := s.readTx(ctx, func(tx *rtx) error {
		rows, err := tx.QueryContext(ctx, `SELECT l.address, l.account_id, a.name FROM aliases l JOIN accounts a ON a.id = l.account_id ORDER BY l.address`)
		if err != nil {
			return fmt.Errorf("list aliases: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var a mailstore.Alias
			if err := rows.Scan(&a.Address, &a.AccountID, &a.Account); err != nil {
				return fmt.Errorf("list aliases: %w", err)
			}
			out = append(out, a)
		}
		return rows.Err()
	})
	return out, err
}

// DeleteAlias removes an alias.
func (s *Store) DeleteAlias(ctx context.Context, address string) error {
	addr := strings.ToLower(strings.TrimSpace(address))
	return s.update(ctx, func(w *wtx) error {
		res, err := w.exec(`DELETE FROM aliases WHERE address = ?`, addr)
		if err != nil {
			return fmt.Errorf("delete alias: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("alias %s: %w", addr, mailstore.ErrNoSuchAlias)
		}
		return nil
	})
}

// ResolveAddress maps an account name or alias to its account.
func (s *Store) ResolveAddress(ctx context.Context, address string) (mailstore.Account, error) {
	if err := s.checkOpen(); err != nil {
		return mailstore.Account{}, err
	}
	addr := strings.ToLower(strings.TrimSpace(address))
	a, err := scanAccount(s.rd().QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts
		WHERE name = ?1 OR id = (SELECT account_id FROM aliases WHERE address = ?1)
		ORDER BY name = ?1 DESC LIMIT 1`, addr))
	if err != nil {
		return a, accountNotFound(err, addr)
	}
	return a, nil
}
