// Package mailstore is Roost's domain: domains, accounts, aliases,
// mailboxes, messages, flags, UIDs, modseqs, the per-account change feed,
// recoverable deleted mail, quotas, the outbound queue's durable records and
// cluster-wide leases. It defines the Store interface that every storage
// backend implements (internal/storage/...) and that every front end
// (IMAP, POP3, SMTP, CLI) uses, and the sentinel errors they map to replies.
//
// Nothing here is specific to a database: the conformance suite in
// storetest pins the behaviour every backend must show.
package mailstore

import (
	"fmt"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/message"
)

// UID is a message's unique identifier within one mailbox incarnation
// (RFC 9051 section 2.3.1.1): strictly ascending, never reused.
type UID uint32

// MaxUID stands for "*" at the top end of a range.
const MaxUID UID = 1<<32 - 1

// ModSeq is the per-account modification sequence (RFC 7162). Every change
// of an account raises it; it is never reused.
type ModSeq uint64

// Special-use attributes (RFC 6154).
const (
	SpecialSent    = `\Sent`
	SpecialTrash   = `\Trash`
	SpecialDrafts  = `\Drafts`
	SpecialJunk    = `\Junk`
	SpecialArchive = `\Archive`
	SpecialAll     = `\All`
	SpecialFlagged = `\Flagged`
)

// System flags (RFC 9051 section 2.3.2). Keywords are any other atom.
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// InboxName is the one case-insensitive mailbox name.
const InboxName = "INBOX"

// Separator is the mailbox hierarchy separator.
const Separator = "/"

// DefaultMailboxes are created with every account, with their special use.
var DefaultMailboxes = []struct{ Name, SpecialUse string }{
	{InboxName, ""},
	{"Sent", SpecialSent},
	{"Drafts", SpecialDrafts},
	{"Trash", SpecialTrash},
	{"Junk", SpecialJunk},
	{"Archive", SpecialArchive},
}

// Domain is a mail domain this server serves.
type Domain struct {
	Name    string // lower case ASCII (A-label)
	Created time.Time
}

// Account is a user. Name is the full login address "local@domain", lower
// case.
type Account struct {
	ID            int64
	Name          string
	Domain        string
	PasswordHash  string // argon2id PHC string; see internal/auth
	QuotaBytes    int64  // 0: unlimited
	QuotaMessages int64  // 0: unlimited
	UsedBytes     int64
	UsedMessages  int64
	Created       time.Time
}

// Full reports whether the account can take no further message: its usage
// has reached its byte or message quota. Both stores refuse a write that
// takes usage past a quota, so usage equal to it leaves room for nothing
// (every message has at least one byte). The account must have been read
// recently: usage changes with every delivery.
func (a Account) Full() bool {
	return (a.QuotaBytes > 0 && a.UsedBytes >= a.QuotaBytes) ||
		(a.QuotaMessages > 0 && a.UsedMessages >= a.QuotaMessages)
}

// Alias maps an address to an account.
type Alias struct {
	Address   string // lower case
	AccountID int64
	Account   string // the account's Name
}

// Mailbox is a folder of an account.
type Mailbox struct {
	ID            int64
	AccountID     int64
	Name          string // full path, "/" separated, UTF-8; INBOX spelled "INBOX"
	SpecialUse    string // one of the Special* constants or ""
	UIDValidity   uint32
	UIDNext       UID
	HighestModSeq ModSeq // the largest modseq of any change in this mailbox
	// VanishedFloor is the modseq at or below which expunge tombstones of
	// this mailbox may have been purged: QRESYNC from an older modseq
	// cannot be answered from tombstones alone.
	VanishedFloor ModSeq
	Subscribed    bool
}

// MailboxStatus is what STATUS and SELECT report.
type MailboxStatus struct {
	Mailbox
	Messages int64
	Unseen   int64
	Deleted  int64 // messages with \Deleted
	Size     int64 // sum of message sizes (STATUS=SIZE)
}

// MailboxView is what selecting a mailbox reads (Store.SelectMailbox),
// all from one snapshot of the store, so that its parts agree: the UIDs
// are the sequence-number map, ModSeq is the account's modseq the list is
// consistent with (the value to pass to Changes next), and FirstUnseen is
// one of UIDs or 0.
type MailboxView struct {
	Mailbox  Mailbox
	UIDs     []UID // ascending
	ModSeq   ModSeq
	Keywords []string // as MailboxKeywords lists them
	// FirstUnseen is the lowest UID without \Seen, 0 if there is none.
	FirstUnseen UID
}

// Message is one message row. Which fields are set depends on the
// FetchFields asked for; UID, ModSeq and Flags are always set.
type Message struct {
	MailboxID    int64
	UID          UID
	ModSeq       ModSeq
	Flags        []string // system flags and keywords, sorted
	InternalDate time.Time
	SaveDate     time.Time
	Size         int64
	// LineSize is the size with every line end as CRLF and a final CRLF:
	// what POP3 reports and sends. 0 when the backend did not store it.
	LineSize int64
	BlobID   string // hex SHA-256 of the raw bytes
	EmailID  string // RFC 8474
	ThreadID string // RFC 8474
	// Envelope and Body may be shared with other Messages and callers
	// (backends cache decoded values): read them, never modify them.
	Envelope *message.Envelope
	Body     *message.Part // BODYSTRUCTURE, with byte offsets
	Preview  string
}

// FetchFields selects the columns a Fetch returns beyond UID, ModSeq, Flags.
type FetchFields uint32

const (
	FetchInternalDate FetchFields = 1 << iota
	FetchSize
	FetchEnvelope
	FetchBody // BODYSTRUCTURE tree
	FetchPreview
	FetchIDs             // EmailID, ThreadID, BlobID, SaveDate
	FetchAll FetchFields = 1<<iota - 1
)

// ChangeKind says what a Change is about.
type ChangeKind uint8

const (
	// ChangeMessage: a message row was created (Created is true) or its
	// flags changed. Flags holds the current flags.
	ChangeMessage ChangeKind = iota + 1
	// ChangeExpunge: the message (MailboxID, UID) is gone.
	ChangeExpunge
	// ChangeMailbox: the mailbox was created, renamed, (un)subscribed or
	// deleted (Deleted is true). Clients re-read the list.
	ChangeMailbox
)

// Change is one entry of the change feed.
type Change struct {
	Kind      ChangeKind
	ModSeq    ModSeq
	MailboxID int64
	UID       UID
	Flags     []string
	Created   bool // ChangeMessage: the row is new since the asked modseq
	Deleted   bool // ChangeMailbox: the mailbox no longer exists
}

// DeletedMessage is an expunged message kept for the retention window.
type DeletedMessage struct {
	ID           int64
	AccountID    int64
	MailboxID    int64  // the mailbox it left (may no longer exist)
	MailboxName  string // its name at the time
	UID          UID    // its UID there
	Flags        []string
	InternalDate time.Time
	ExpungedAt   time.Time
	Size         int64
	From         string
	Subject      string
	BlobID       string
}

// RestoredFlags are the flags a restored message gets back: those it had,
// less \Deleted. IMAP clients delete by flagging \Deleted and expunging,
// so most retained mail carries it, and keeping it would let the next
// EXPUNGE or CLOSE of any client undo the operator's restore.
func RestoredFlags(flags []string) []string {
	out := make([]string, 0, len(flags))
	for _, f := range flags {
		if !strings.EqualFold(f, FlagDeleted) {
			out = append(out, f)
		}
	}
	return out
}

// DistinctIDs returns ids with repeats removed, first occurrences kept in
// order: an ID given twice to RestoreDeleted names one message, which must
// come back once, not fail the rest or be restored twice.
func DistinctIDs(ids []int64) []int64 {
	seen := make(map[int64]bool, len(ids))
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}

// AppendRequest is one message to store.
type AppendRequest struct {
	MailboxID int64
	// MailboxName names the mailbox when MailboxID is 0. The store looks
	// it up inside the write itself, which spares IMAP's APPEND a read
	// before it; ErrNoSuchMailbox if there is none.
	MailboxName  string
	Raw          []byte
	Flags        []string
	InternalDate time.Time // zero: now
}

// AppendResult says where a message landed.
type AppendResult struct {
	MailboxID   int64
	UIDValidity uint32
	UID         UID
	ModSeq      ModSeq
	// Existing is true when the store found the same message (same
	// Message-ID) already in a \Sent mailbox and stored nothing new.
	Existing bool
}

// Delivery is one inbound message for several local accounts, stored in
// one transaction: either every recipient has it or none does.
type Delivery struct {
	Raw        []byte
	Recipients []DeliveryTarget
	// Queue holds outbound entries for Raw (a submission's remote
	// recipients), stored in the same transaction as the local copies:
	// the message is accepted for every recipient or for none, so a
	// client resending after a failure never duplicates a local copy.
	// The store wakes the queue workers (QueueWatchID) when it commits.
	Queue []QueueEntry
}

// DeliveryTarget is one recipient's copy.
type DeliveryTarget struct {
	AccountID int64
	MailboxID int64 // 0: the account's INBOX
	Flags     []string
}

// StoreFlagsMode is how StoreFlags combines flags (RFC 9051 section 6.4.6).
type StoreFlagsMode uint8

const (
	FlagsReplace StoreFlagsMode = iota
	FlagsAdd
	FlagsRemove
)

// StoreFlagsRequest changes flags of the messages in UIDs.
type StoreFlagsRequest struct {
	MailboxID int64
	UIDs      UIDSet
	Mode      StoreFlagsMode
	Flags     []string
	// UnchangedSince, when non-zero, skips messages whose modseq is
	// greater (RFC 7162 section 3.1.3); they are returned as Modified.
	UnchangedSince ModSeq
}

// StoreFlagsResult reports what changed.
type StoreFlagsResult struct {
	Changed []Message // UID, ModSeq, Flags of each message whose flags changed
	// Unchanged holds UID, ModSeq, Flags of each message of the set whose
	// flags already were as asked: a STORE without .SILENT reports them
	// too (RFC 9051 section 6.4.6), and the store has just read them.
	Unchanged []Message
	Modified  UIDSet // UIDs refused by UnchangedSince
	ModSeq    ModSeq // the modseq of this change (0 if nothing changed)
}

// CopyResult pairs source and destination UIDs (RFC 4315 COPYUID).
type CopyResult struct {
	UIDValidity uint32 // of the destination
	SrcUIDs     []UID
	DstUIDs     []UID
	ModSeq      ModSeq
}

// QueueEntry is one outbound message for one remote domain.
type QueueEntry struct {
	ID          int64
	AccountID   int64  // the submitting account, 0 for bounces/forwards
	From        string // envelope sender; "" for a bounce (null reverse-path)
	Recipients  []string
	Domain      string // the recipients' domain
	BlobID      string
	Size        int64
	Created     time.Time
	Attempts    int
	NextAttempt time.Time
	LastError   string
	Warned      bool // a delay warning was sent
	// Lease: the node working on this entry and until when.
	LeaseOwner string
	LeaseUntil time.Time
	// Delivery status notification parameters (RFC 3461) given with the
	// message; zero values mean none were given.
	Ret   string // RET: "FULL" or "HDRS" (section 4.3); "" absent
	EnvID string // ENVID, xtext-decoded (section 4.4); "" absent
	// RcptDSN holds NOTIFY and ORCPT per recipient, aligned with
	// Recipients (RcptDSN[i] is Recipients[i]'s); nil when no recipient
	// had either.
	RcptDSN []RcptDSN
}

// RcptDSN is one recipient's DSN parameters (RFC 3461 sections 4.1, 4.2).
type RcptDSN struct {
	// Notify is NOTIFY's keywords, upper case: ["NEVER"], or some of
	// "SUCCESS", "FAILURE", "DELAY"; nil when absent (the default,
	// FAILURE and DELAY, applies).
	Notify []string
	// ORcpt is ORCPT as "addr-type;address" with the address decoded
	// (e.g. "rfc822;a@b.example"); "" when absent.
	ORcpt string
}

// SplitRcptDSN turns an entry's per-recipient DSN parameters into the two
// lists the backends store (NOTIFY's keywords comma-joined, "" for none),
// empty when no recipient has any; ErrInvalidName when RcptDSN is not
// aligned with Recipients.
func SplitRcptDSN(e QueueEntry) (notify, orcpt []string, err error) {
	if len(e.RcptDSN) == 0 {
		return []string{}, []string{}, nil
	}
	if len(e.RcptDSN) != len(e.Recipients) {
		return nil, nil, fmt.Errorf("queue entry has %d recipients but %d DSN parameter sets: %w", len(e.Recipients), len(e.RcptDSN), ErrInvalidName)
	}
	notify, orcpt = make([]string, len(e.RcptDSN)), make([]string, len(e.RcptDSN))
	for i, d := range e.RcptDSN {
		notify[i], orcpt[i] = strings.Join(d.Notify, ","), d.ORcpt
	}
	return notify, orcpt, nil
}

// JoinRcptDSN is SplitRcptDSN's inverse: nil for empty lists.
func JoinRcptDSN(notify, orcpt []string) []RcptDSN {
	n := max(len(notify), len(orcpt))
	if n == 0 {
		return nil
	}
	out := make([]RcptDSN, n)
	for i := range out {
		if i < len(notify) && notify[i] != "" {
			out[i].Notify = strings.Split(notify[i], ",")
		}
		if i < len(orcpt) {
			out[i].ORcpt = orcpt[i]
		}
	}
	return out
}
