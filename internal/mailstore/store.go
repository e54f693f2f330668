package mailstore

import (
	"context"
	"io"
	"time"
)

// Store is the whole mail store. Every method is one atomic transaction:
// it either happens completely or not at all, and when it returns nil its
// effect is durable. Methods are safe for concurrent use.
//
// Every write that changes an account raises the account's modseq and, after
// commit, wakes that account's watchers through the Notifier.
type Store interface {
	Directory
	Mail
	Retention
	Queue
	Leases
	// Watch subscribes to wake-ups for an account (see Notifier).
	Watch(accountID int64) *Watcher
	io.Closer
}

// Directory holds domains, accounts and aliases.
type Directory interface {
	AddDomain(ctx context.Context, name string) error
	ListDomains(ctx context.Context) ([]Domain, error)
	// DeleteDomain fails with ErrNotEmpty while accounts or aliases use it.
	DeleteDomain(ctx context.Context, name string) error

	// AddAccount creates the account and its DefaultMailboxes. The domain
	// must exist (ErrNoSuchDomain).
	AddAccount(ctx context.Context, name, passwordHash string) (Account, error)
	GetAccount(ctx context.Context, name string) (Account, error)
	GetAccountByID(ctx context.Context, id int64) (Account, error)
	ListAccounts(ctx context.Context) ([]Account, error)
	SetPassword(ctx context.Context, name, passwordHash string) error
	SetQuota(ctx context.Context, name string, bytes, messages int64) error
	// DeleteAccount removes the account, its mail and its aliases. Its
	// queued outbound mail stays queued: it was accepted and must leave.
	DeleteAccount(ctx context.Context, name string) error

	AddAlias(ctx context.Context, address, account string) error
	ListAliases(ctx context.Context) ([]Alias, error)
	DeleteAlias(ctx context.Context, address string) error
	// ResolveAddress maps an address (an account name or an alias) to its
	// account. ErrNoSuchAccount if neither.
	ResolveAddress(ctx context.Context, address string) (Account, error)
}

// Mail holds mailboxes and messages.
type Mail interface {
	// HighestModSeq is the account's current modseq.
	HighestModSeq(ctx context.Context, accountID int64) (ModSeq, error)

	ListMailboxes(ctx context.Context, accountID int64) ([]Mailbox, error)
	// GetMailbox finds a mailbox by name; "inbox" in any case is INBOX.
	GetMailbox(ctx context.Context, accountID int64, name string) (Mailbox, error)
	GetMailboxByID(ctx context.Context, accountID, id int64) (Mailbox, error)
	// MailboxBySpecialUse finds the mailbox with that attribute.
	MailboxBySpecialUse(ctx context.Context, accountID int64, use string) (Mailbox, error)
	// CreateMailbox makes a mailbox (and any missing parents, RFC 9051
	// section 6.3.4) with a fresh UIDVALIDITY. ErrExists if it exists.
	CreateMailbox(ctx context.Context, accountID int64, name, specialUse string) (Mailbox, error)
	// RenameMailbox renames a mailbox and its children. Renaming INBOX
	// moves its messages to the new mailbox and leaves INBOX empty, with
	// its inferiors in place (RFC 9051 section 6.3.6), so the new name may
	// be one below INBOX such as INBOX/old.
	RenameMailbox(ctx context.Context, accountID int64, from, to string) error
	// DeleteMailbox removes a mailbox and its messages (into the retention
	// area). ErrHasChildren when it has inferior names (a choice: RFC 9051
	// section 6.3.5 would allow keeping it as \Noselect, but the store has
	// no \Noselect mailboxes); ErrCannotDelete for
	// INBOX.
	DeleteMailbox(ctx context.Context, accountID int64, name string) error
	SetSubscribed(ctx context.Context, accountID int64, name string, subscribed bool) error
	// Status counts a mailbox.
	Status(ctx context.Context, accountID, mailboxID int64) (MailboxStatus, error)
	// MailboxKeywords lists the keywords (flags other than the system
	// flags) set on at least one message of the mailbox, sorted, each in
	// one spelling: what IMAP announces in FLAGS (RFC 9051 section 7.3.5).
	MailboxKeywords(ctx context.Context, accountID, mailboxID int64) ([]string, error)

	// Append stores messages (MULTIAPPEND: all or none). Quota is checked.
	// Appending into a \Sent mailbox a message whose Message-ID is already
	// there stores nothing and returns the existing UID (Existing).
	Append(ctx context.Context, accountID int64, reqs []AppendRequest) ([]AppendResult, error)
	// Deliver stores one inbound message for all its local recipients in
	// one transaction. Over-quota recipients fail the whole delivery with
	// ErrOverQuota (the SMTP server refuses full mailboxes one by one at
	// RCPT, so this is left for an account that fills before DATA).
	Deliver(ctx context.Context, d Delivery) ([]AppendResult, error)

	// UIDs lists the UIDs of a mailbox in ascending order: the snapshot a
	// session builds its sequence numbers from, and the ACCOUNT's modseq it
	// is consistent with: the value to pass to Changes next.
	UIDs(ctx context.Context, accountID, mailboxID int64) ([]UID, ModSeq, error)
	// SelectMailbox reads what selecting the mailbox by name needs in one
	// snapshot (one read transaction instead of four, and the first
	// unseen message from an index rather than a search).
	// ErrNoSuchMailbox if there is none.
	SelectMailbox(ctx context.Context, accountID int64, name string) (MailboxView, error)
	// Fetch calls fn for each message in uids, in UID order, with the
	// fields asked for. changedSince > 0 keeps only messages whose modseq
	// is greater (RFC 7162 CHANGEDSINCE).
	Fetch(ctx context.Context, accountID, mailboxID int64, uids UIDSet, fields FetchFields, changedSince ModSeq, fn func(*Message) error) error
	// ReadBlob returns the raw message bytes, exactly as received.
	ReadBlob(ctx context.Context, blobID string) ([]byte, error)
	// StoreFlags changes flags.
	StoreFlags(ctx context.Context, accountID int64, req StoreFlagsRequest) (StoreFlagsResult, error)
	// Copy copies messages into another mailbox of the same account under
	// new UIDs over the same blobs.
	Copy(ctx context.Context, accountID, srcMailbox int64, uids UIDSet, dstMailbox int64) (CopyResult, error)
	// Move is Copy and Expunge in one transaction: a concurrent reader
	// never sees zero or two copies (RFC 6851).
	Move(ctx context.Context, accountID, srcMailbox int64, uids UIDSet, dstMailbox int64) (CopyResult, error)
	// Expunge removes the messages in uids (all of them: POP3's DELE;
	// IMAP's EXPUNGE uses ExpungeDeleted), leaving tombstones
	// and keeping them recoverable. Returns the UIDs removed and the modseq
	// of the change (0 when nothing was removed).
	Expunge(ctx context.Context, accountID, mailboxID int64, uids UIDSet) ([]UID, ModSeq, error)
	// ExpungeDeleted is Expunge of the messages in uids that have \Deleted
	// when it runs (RFC 9051 section 6.4.3, RFC 4315 UID EXPUNGE): one
	// whose \Deleted another session has just taken away stays, which a
	// Search followed by Expunge cannot promise.
	ExpungeDeleted(ctx context.Context, accountID, mailboxID int64, uids UIDSet) ([]UID, ModSeq, error)
	// Search returns the UIDs matching key, ascending.
	Search(ctx context.Context, accountID, mailboxID int64, key *SearchKey) ([]UID, error)

	// Changes returns the account's changes with modseq > since, in modseq
	// order, at most limit (0: all); a page never ends inside a group of
	// changes sharing one modseq, so one group larger than limit comes
	// whole. Created is relative to the since asked. Commit order is
	// modseq order: once a change with modseq M is visible, no change with
	// a modseq <= M can appear later (a session resuming from M would miss
	// it), so backends with concurrent writers serialise modseq allocation
	// with the commit. Message changes are reported once
	// with their current state; expunges come from tombstones exactly.
	Changes(ctx context.Context, accountID int64, since ModSeq, limit int) ([]Change, error)
	// Vanished returns the UIDs of mailboxID expunged with modseq > since
	// (QRESYNC), from tombstones.
	Vanished(ctx context.Context, accountID, mailboxID int64, since ModSeq) ([]UID, error)

	// PopHidden lists the UIDs of mailboxID hidden from a POP3 view
	// ("" is the account's own view, else a device name).
	PopHidden(ctx context.Context, accountID, mailboxID int64, view string) ([]UID, error)
	// PopHide hides UIDs from a POP3 view. It raises the modseq of nothing
	// visible to IMAP.
	PopHide(ctx context.Context, accountID, mailboxID int64, view string, uids []UID) error
}

// Retention keeps expunged mail recoverable for a window.
type Retention interface {
	ListDeleted(ctx context.Context, accountID int64) ([]DeletedMessage, error)
	// RestoreDeleted puts deleted messages back into the mailbox they left
	// (INBOX if it is gone) under new UIDs, with their flags less \Deleted
	// (RestoredFlags). An ID given more than once is restored once; the
	// results follow DistinctIDs(ids).
	RestoreDeleted(ctx context.Context, accountID int64, ids []int64) ([]AppendResult, error)
	// Purge drops deleted messages expunged before cutoff, tombstones
	// older than tombstoneCutoff (raising mailboxes' VanishedFloor), and
	// blobs no longer referenced.
	Purge(ctx context.Context, cutoff, tombstoneCutoff time.Time) (int, error)
}

// Queue is the durable outbound queue's storage.
type Queue interface {
	// Enqueue stores raw once and one entry per recipient domain. Entries
	// keep their given Created, Attempts, NextAttempt, LastError and Warned
	// when non-zero (a partial delivery re-enqueues the rest).
	Enqueue(ctx context.Context, raw []byte, entries []QueueEntry) ([]int64, error)
	ListQueue(ctx context.Context) ([]QueueEntry, error)
	GetQueueEntry(ctx context.Context, id int64) (QueueEntry, error)
	// ClaimDue leases up to limit entries due at now to owner until
	// leaseUntil; an expired lease is up for grabs (a dead node's work).
	// Each entry is claimed by exactly one caller.
	ClaimDue(ctx context.Context, owner string, now, leaseUntil time.Time, limit int) ([]QueueEntry, error)
	// ExtendLease moves the end of owner's lease on entry id to until, so
	// an attempt that runs long keeps its entry; an until not after now
	// gives the lease back (the entry is up for grabs at once). A lease
	// that expired is still extended if nobody claimed the entry since.
	// ErrLeaseHeld if owner no longer holds it (released, or claimed by
	// another owner), ErrNoSuchMessage if the entry is gone.
	ExtendLease(ctx context.Context, id int64, owner string, until time.Time) error
	// UpdateQueueEntry records an attempt (Attempts, NextAttempt,
	// LastError, Warned) and releases the lease.
	UpdateQueueEntry(ctx context.Context, e QueueEntry) error
	// RetryQueue makes the given entries (all when ids is empty) due now.
	RetryQueue(ctx context.Context, ids []int64, now time.Time) (int, error)
	// DeleteQueueEntry removes an entry (delivered, bounced or dropped).
	DeleteQueueEntry(ctx context.Context, id int64) error
}

// Leases are named, expiring locks shared by every node on the store: the
// POP3 maildrop lock, singleton jobs.
type Leases interface {
	// AcquireLease takes name for owner until until; false if another
	// owner holds an unexpired lease. The same owner may renew.
	AcquireLease(ctx context.Context, name, owner string, until time.Time) (bool, error)
	ReleaseLease(ctx context.Context, name, owner string) error
}
