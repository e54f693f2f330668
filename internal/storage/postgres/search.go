package postgres

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// Search returns the UIDs matching key, ascending. Substring keys become
// ILIKE '%...%' (wildcards in the needle escaped) or a case-insensitive
// regular expression for arbitrary header fields, on the blob's text
// (blob_text, one row per blob); its pg_trgm GIN indexes serve both.
func (s *Store) Search(ctx context.Context, accountID, mailboxID int64, key *mailstore.SearchKey) ([]mailstore.UID, error) {
	q, err := s.db()
	if err != nil {
		return nil, err
	}
	if err := checkMailbox(ctx, q, accountID, mailboxID); err != nil {
		return nil, err
	}
	b := &sqlBuilder{args: []any{mailboxID}}
	where, err := b.key(key, 0)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, "SELECT m.uid FROM messages m WHERE m.mailbox_id = $1 AND ("+where+") ORDER BY m.uid", b.args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: search: %w", err)
	}
	return collectUIDs(rows)
}

type sqlBuilder struct {
	args []any
}

func (b *sqlBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

// dayStart is the first instant of t's calendar day in t's own location;
// RFC 9051 section 6.4.4 compares dates "disregarding time and timezone".
func dayStart(t time.Time) time.Time {
	y, m, d := t.Date()
	return time.Date(y, m, d, 0, 0, 0, 0, t.Location())
}

// likeContains makes an ILIKE pattern matching v anywhere, with v's own
// wildcards and escapes taken literally.
func likeContains(v string) string {
	return "%" + likePrefix(clean(v)) + "%"
}

// headerColumns maps header names to the decoded columns kept for them.
var headerColumns = map[string]string{
	"from": "m.hdr_from", "to": "m.hdr_to", "cc": "m.hdr_cc", "bcc": "m.hdr_bcc", "subject": "m.hdr_subject",
}

// maxSearchDepth bounds the recursion over a client-built search program.
const maxSearchDepth = 64

func (b *sqlBuilder) key(k *mailstore.SearchKey, depth int) (string, error) {
	if k == nil {
		return "true", nil
	}
	if depth > maxSearchDepth {
		return "", fmt.Errorf("%w: search program nested too deeply", mailstore.ErrInvalidName)
	}
	switch k.Op {
	case mailstore.SearchAll:
		return "true", nil
	case mailstore.SearchAnd, mailstore.SearchOr:
		if len(k.Children) == 0 {
			if k.Op == mailstore.SearchAnd {
				return "true", nil
			}
			return "false", nil
		}
		parts := make([]string, 0, len(k.Children))
		for _, c := range k.Children {
			p, err := b.key(c, depth+1)
			if err != nil {
				return "", err
			}
			parts = append(parts, "("+p+")")
		}
		op := " AND "
		if k.Op == mailstore.SearchOr {
			op = " OR "
		}
		return strings.Join(parts, op), nil
	case mailstore.SearchNot:
		if len(k.Children) != 1 {
			return "", fmt.Errorf("%w: NOT takes one key", mailstore.ErrInvalidName)
		}
		p, err := b.key(k.Children[0], depth+1)
		if err != nil {
			return "", err
		}
		return "NOT (" + p + ")", nil
	case mailstore.SearchUIDs:
		lo, hi := uidRanges(k.UIDs)
		return "EXISTS (SELECT 1 FROM unnest(" + b.arg(lo) + "::bigint[], " + b.arg(hi) + "::bigint[]) AS r(lo, hi) WHERE m.uid BETWEEN r.lo AND r.hi)", nil
	case mailstore.SearchFlag, mailstore.SearchNoFlag:
		// Flags are stored normalised (system flags canonical); keywords
		// compare case-insensitively (RFC 9051 section 2.3.2).
		e := "EXISTS (SELECT 1 FROM unnest(m.flags) AS f WHERE lower(f) = lower(" + b.arg(clean(k.Flag)) + "))"
		if k.Op == mailstore.SearchNoFlag {
			e = "NOT " + e
		}
		return e, nil
	case mailstore.SearchBefore:
		return "m.internal_date < " + b.arg(dayStart(k.Date)), nil
	case mailstore.SearchOn:
		d := dayStart(k.Date)
		return "m.internal_date >= " + b.arg(d) + " AND m.internal_date < " + b.arg(d.AddDate(0, 0, 1)), nil
	case mailstore.SearchSince:
		return "m.internal_date >= " + b.arg(dayStart(k.Date)), nil
	case mailstore.SearchSavedBefore:
		return "m.save_date < " + b.arg(dayStart(k.Date)), nil
	case mailstore.SearchSavedOn:
		d := dayStart(k.Date)
		return "m.save_date >= " + b.arg(d) + " AND m.save_date < " + b.arg(d.AddDate(0, 0, 1)), nil
	case mailstore.SearchSavedSince:
		return "m.save_date >= " + b.arg(dayStart(k.Date)), nil
	case mailstore.SearchSentBefore:
		return "m.sent_day < " + b.arg(dayOf(k.Date)), nil
	case mailstore.SearchSentOn:
		return "m.sent_day = " + b.arg(dayOf(k.Date)), nil
	case mailstore.SearchSentSince:
		return "m.sent_day >= " + b.arg(dayOf(k.Date)), nil
	case mailstore.SearchLarger:
		return "m.size > " + b.arg(k.Size), nil
	case mailstore.SearchSmaller:
		return "m.size < " + b.arg(k.Size), nil
	// RFC 5032: OLDER n is an internal date more than n seconds ago,
	// YOUNGER n within the last n seconds.
	case mailstore.SearchOlder:
		return "m.internal_date <= " + b.arg(now().Add(-time.Duration(k.Seconds)*time.Second)), nil
	case mailstore.SearchYounger:
		return "m.internal_date > " + b.arg(now().Add(-time.Duration(k.Seconds)*time.Second)), nil
	case mailstore.SearchModSeq:
		return "m.modseq >= " + b.arg(int64(k.ModSeq)), nil
	case mailstore.SearchEmailID:
		return "m.email_id = " + b.arg(k.Value), nil
	case mailstore.SearchThreadID:
		return "m.thread_id = " + b.arg(k.Value), nil
	case mailstore.SearchBody:
		return blobTextHas("t.body_text ILIKE " + b.arg(likeContains(k.Value))), nil
	case mailstore.SearchText:
		p := b.arg(likeContains(k.Value))
		return blobTextHas("(t.header_text ILIKE " + p + " OR t.body_text ILIKE " + p + ")"), nil
	case mailstore.SearchHeader:
		return b.header(k.Name, k.Value), nil
	}
	return "", fmt.Errorf("%w: search key %d", mailstore.ErrInvalidName, k.Op)
}

// header matches a header field containing value. The common address and
// subject fields have decoded columns; any other field is found in the
// unfolded header text with a case-insensitive regular expression anchored
// at a line start: "Name:", then anything on that field (continuation
// lines included, should the text still be folded), then the value. An
// empty value matches any message having the field (RFC 9051 section 6.4.4).
func (b *sqlBuilder) header(name, value string) string {
	name = strings.TrimSpace(name)
	if col, ok := headerColumns[strings.ToLower(name)]; ok && value != "" {
		return col + " ILIKE " + b.arg(likeContains(value))
	}
	re := `(^|\n)` + regexp.QuoteMeta(clean(name)) + `[ \t]*:([^\n]|\n[ \t])*` + regexp.QuoteMeta(clean(value))
	return blobTextHas("t.header_text ~* " + b.arg(re))
}

// blobTextHas is the condition that the message's text (blob_text, as t)
// matches cond. The planner may look up each row's text by key, or take
// the GIN index's matches first and find the mailbox's rows holding them
// by the index on messages (mailbox_id, blob_id), whichever its estimates
// favour: a rare needle in a 100k-message mailbox took 4 ms the second way
// and 55 ms without that index, when every row had to be read.
func blobTextHas(cond string) string {
	return "EXISTS (SELECT 1 FROM blob_text t WHERE t.id = m.blob_id AND " + cond + ")"
}
