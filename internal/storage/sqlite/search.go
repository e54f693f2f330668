package sqlite

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/roost-mail/roost/internal/mailstore"
)

// searchQuery builds the WHERE condition of a search program over the
// messages table aliased m.
type searchQuery struct {
	b       strings.Builder
	args    []any
	now     time.Time
	mailbox int64
	pending int64 // the handle of the store's pendingTexts
	// oldIndex: blob_fts is in the format before ftsterms.go (FTS5's
	// trigram tokenizer over header and body), while it is converted.
	oldIndex bool
}

// maxSearchDepth bounds recursion on hostile programs.
const maxSearchDepth = 64

// Search returns the UIDs of a mailbox matching key, ascending (RFC 9051
// section 6.4.4).
func (s *Store) Search(ctx context.Context, accountID, mailboxID int64, key *mailstore.SearchKey) ([]mailstore.UID, error) {
	if key == nil {
		key = &mailstore.SearchKey{Op: mailstore.SearchAll}
	}
	var out []mailstore.UID
	err := s.readTx(ctx, func(tx *rtx) error {
		if _, err := getMailboxByID(ctx, tx, accountID, mailboxID); err != nil {
			return err
		}
		q := &searchQuery{now: time.Now(), mailbox: mailboxID, pending: s.ptexts.handle}
		// The conversion swaps the tables in one transaction and then
		// clears ftsConverting: while it is set, this snapshot may have
		// either format.
		if s.ftsConverting.Load() {
			var def string
			if err := tx.QueryRowContext(ctx, `SELECT sql FROM fts.sqlite_schema WHERE name = 'blob_fts'`).Scan(&def); err != nil {
				return fmt.Errorf("search: index format: %w", err)
			}
			q.oldIndex = !isCurrentFTS(def)
		}
		if err := q.key(key, 0); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT m.uid FROM messages m WHERE m.mailbox_id = ? AND (`+q.b.String()+`) ORDER BY m.uid`,
			append([]any{mailboxID}, q.args...)...)
		if err != nil {
			return fmt.Errorf("search: %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var u mailstore.UID
			if err := rows.Scan(&u); err != nil {
				return fmt.Errorf("search: %w", err)
			}
			out = append(out, u)
		}
		return rows.Err()
	})
	return out, err
}

func (q *searchQuery) w(sql string, args ...any) {
	q.b.WriteString(sql)
	q.args = append(q.args, args...)
}

// dayStart is the start of the calendar day of d in d's location.
func dayStart(d time.Time) time.Time {
	y, m, dd := d.Date()
	return time.Date(y, m, dd, 0, 0, 0, 0, d.Location())
}

func (q *searchQuery) key(k *mailstore.SearchKey, depth int) error {
	if depth > maxSearchDepth {
		return fmt.Errorf("%w: search program nested too deeply", mailstore.ErrInvalidName)
	}
	switch k.Op {
	case mailstore.SearchAll:
		q.w("1")
	case mailstore.SearchAnd, mailstore.SearchOr:
		if len(k.Children) == 0 {
			if k.Op == mailstore.SearchAnd {
				q.w("1")
			} else {
				q.w("0")
			}
			return nil
		}
		op := " AND "
		if k.Op == mailstore.SearchOr {
			op = " OR "
		}
		q.w("(")
		for i, c := range k.Children {
			if i > 0 {
				q.w(op)
			}
			if err := q.key(c, depth+1); err != nil {
				return err
			}
		}
		q.w(")")
	case mailstore.SearchNot:
		if len(k.Children) != 1 {
			return fmt.Errorf("%w: NOT needs one operand", mailstore.ErrInvalidName)
		}
		q.w("NOT (")
		if err := q.key(k.Children[0], depth+1); err != nil {
			return err
		}
		q.w(")")
	case mailstore.SearchUIDs:
		set := k.UIDs.Normalize()
		if len(set) == 0 {
			q.w("0")
			return nil
		}
		// Every range is written out: a search program's sets come from a
		// client line, already bounded in size by the front end.
		q.w("(")
		for i, r := range set {
			if i > 0 {
				q.w(" OR ")
			}
			q.w("m.uid BETWEEN ? AND ?", int64(r.Lo), int64(r.Hi))
		}
		q.w(")")
	case mailstore.SearchFlag, mailstore.SearchNoFlag:
		not := ""
		if k.Op == mailstore.SearchNoFlag {
			not = "NOT "
		}
		if bit := systemBit(k.Flag); bit != 0 {
			// The bit is written as a literal in the shape of the partial
			// indexes of migration 0006 (flags & 1 = 0, flags & 8 <> 0),
			// so the planner can use them; bits are our constants.
			cmp := " <> 0"
			if k.Op == mailstore.SearchNoFlag {
				cmp = " = 0"
			}
			q.w("(m.flags & " + strconv.FormatInt(bit, 10) + cmp + ")")
		} else {
			// Keywords are case-insensitive atoms (RFC 9051 section 2.3.2).
			q.w(not+"(instr(' ' || lower(m.keywords) || ' ', ' ' || lower(?) || ' ') > 0)", k.Flag)
		}
	case mailstore.SearchBefore:
		q.w("m.internal_date < ?", dayStart(k.Date).UnixNano())
	case mailstore.SearchOn:
		st := dayStart(k.Date)
		q.w("(m.internal_date >= ? AND m.internal_date < ?)", st.UnixNano(), st.AddDate(0, 0, 1).UnixNano())
	case mailstore.SearchSince:
		q.w("m.internal_date >= ?", dayStart(k.Date).UnixNano())
	case mailstore.SearchSavedBefore:
		q.w("m.save_date < ?", dayStart(k.Date).UnixNano())
	case mailstore.SearchSavedOn:
		st := dayStart(k.Date)
		q.w("(m.save_date >= ? AND m.save_date < ?)", st.UnixNano(), st.AddDate(0, 0, 1).UnixNano())
	case mailstore.SearchSavedSince:
		q.w("m.save_date >= ?", dayStart(k.Date).UnixNano())
	// RFC 9051 section 6.4.4: SENT* compare the Date: header's day,
	// "disregarding time and timezone": the stored sent_day.
	case mailstore.SearchSentBefore:
		q.w("m.sent_day < ?", dayNumber(k.Date))
	case mailstore.SearchSentOn:
		q.w("m.sent_day = ?", dayNumber(k.Date))
	case mailstore.SearchSentSince:
		q.w("m.sent_day >= ?", dayNumber(k.Date))
	case mailstore.SearchLarger:
		q.w("m.size > ?", k.Size)
	case mailstore.SearchSmaller:
		q.w("m.size < ?", k.Size)
	case mailstore.SearchModSeq:
		q.w("m.modseq >= ?", int64(k.ModSeq))
	// RFC 5032: OLDER n is an internal date more than n seconds ago,
	// YOUNGER n within the last n seconds.
	case mailstore.SearchOlder:
		q.w("m.internal_date <= ?", q.now.Add(-time.Duration(k.Seconds)*time.Second).UnixNano())
	case mailstore.SearchYounger:
		q.w("m.internal_date > ?", q.now.Add(-time.Duration(k.Seconds)*time.Second).UnixNano())
	case mailstore.SearchEmailID:
		q.w("m.email_id = ?", k.Value)
	case mailstore.SearchThreadID:
		q.w("m.thread_id = ?", k.Value)
	case mailstore.SearchHeader:
		q.header(k.Name, k.Value)
	case mailstore.SearchBody:
		q.text("body", k.Value)
	case mailstore.SearchText:
		q.text("", k.Value)
	default:
		return fmt.Errorf("%w: unknown search key %d", mailstore.ErrInvalidName, k.Op)
	}
	return nil
}

// header renders HEADER name value. The fields SEARCH FROM/TO/CC/BCC/
// SUBJECT use have decoded columns; any other field is matched in the
// stored header text.
func (q *searchQuery) header(name, value string) {
	col := map[string]string{"from": "m.hdr_from", "to": "m.hdr_to", "cc": "m.hdr_cc", "bcc": "m.hdr_bcc", "subject": "m.hdr_subject"}[strings.ToLower(name)]
	if col != "" && value != "" {
		q.w("roost_contains("+col+", ?)", value)
		return
	}
	q.w("(EXISTS (SELECT 1 FROM "+q.indexedText()+" WHERE f.id = m.text_id AND roost_header(f.header, ?, ?))"+
		" OR EXISTS (SELECT 1 FROM fts_pending p WHERE p.id = m.text_id AND roost_header("+pendingCol(q.pending, "header")+", ?, ?)))", name, value, name, value)
}

// text renders BODY (col "body") or TEXT (col "": header and body).
// Needles the trigram index can narrow go through it; others (shorter
// than three characters, or with no trigram the index holds: ftsterms.go)
// are tested directly on the stored text.
func (q *searchQuery) text(col, value string) {
	if value == "" {
		q.w("1")
		return
	}
	var match string
	switch {
	case !q.oldIndex:
		match = termsQuery(value)
	case utf8.RuneCountInString(value) >= 3:
		match = trigramQuery(col, value)
	}
	if match != "" {
		// The index has no positions (ftsdb.go), so it finds the entries
		// holding every trigram of the needle, and the stored text of
		// those few is then tested for the needle itself (RFC 9051
		// section 6.4.4: a substring match). Text not yet indexed
		// (fts_pending) is tested directly, for the entries this mailbox
		// uses. The rows of this mailbox using the matching entries
		// (index messages_text) form one list of row ids, made once; the
		// outer query checks each row id of the (mailbox_id, uid) index it
		// walks against it, never reading a row that does not match.
		q.w("m.id IN (SELECT x.id FROM messages x WHERE x.mailbox_id = ? AND x.text_id IN (SELECT f.id FROM "+q.indexedText()+
			" WHERE f.id IN (SELECT rowid FROM fts.blob_fts WHERE blob_fts MATCH ?) AND ", q.mailbox, match)
		q.textMatch("f.header", "f.body", col, value)
		q.w(" UNION ALL SELECT p.id FROM fts_pending p WHERE EXISTS (SELECT 1 FROM messages y WHERE y.mailbox_id = ? AND y.text_id = p.id) AND ", q.mailbox)
		q.textMatch(pendingCol(q.pending, "header"), pendingCol(q.pending, "body"), col, value)
		q.w("))")
		return
	}
	q.w("(EXISTS (SELECT 1 FROM " + q.indexedText() + " WHERE f.id = m.text_id AND ")
	q.textMatch("f.header", "f.body", col, value)
	q.w(") OR EXISTS (SELECT 1 FROM fts_pending p WHERE p.id = m.text_id AND ")
	q.textMatch(pendingCol(q.pending, "header"), pendingCol(q.pending, "body"), col, value)
	q.w("))")
}

// indexedText is the table holding the text of indexed entries, as f
// with columns id, header and body.
func (q *searchQuery) indexedText() string {
	if q.oldIndex {
		return "(SELECT rowid AS id, header, body FROM fts.blob_fts) f"
	}
	return "fts.fts_text f"
}

// textMatch tests the text (SQL expressions header and body, of a
// fts_text or an fts_pending row) for value: the body only (col "body")
// or header and body.
func (q *searchQuery) textMatch(header, body, col, value string) {
	if col != "" {
		q.w("roost_contains("+body+", ?)", value)
		return
	}
	q.w("(roost_contains("+header+", ?) OR roost_contains("+body+", ?))", value, value)
}

// trigramQuery is termsQuery for an index in the format before
// ftsterms.go, tokenized by FTS5's trigram tokenizer, which folds case
// itself; in column col ("" for any).
func trigramQuery(col, value string) string {
	r := []rune(value)
	seen := map[string]bool{}
	var terms []string
	for i := 0; i+3 <= len(r) && len(terms) < maxTrigrams; i++ {
		t := string(r[i : i+3])
		if k := strings.ToLower(t); !seen[k] {
			seen[k] = true
			terms = append(terms, `"`+strings.ReplaceAll(t, `"`, `""`)+`"`)
		}
	}
	q := strings.Join(terms, " AND ")
	if col != "" {
		q = col + " : (" + q + ")"
	}
	return q
}
