package sqlite

import (
	"database/sql"
	"errors"
	"strings"

	"github.com/roost-mail/roost/internal/mailstore"
)

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// maxRangeTerms bounds the OR terms of a UID condition; a larger set is
// narrowed in SQL by its bounds and filtered exactly in Go.
const maxRangeTerms = 64

// uidCond renders a UID set as a condition on column col. exact is false
// when the condition is only a superset and rows must pass set.Contains.
// An empty set matches nothing.
func uidCond(col string, set mailstore.UIDSet) (cond string, args []any, exact bool) {
	set = set.Normalize()
	if len(set) == 0 {
		return "0", nil, true
	}
	if len(set) > maxRangeTerms {
		return col + " BETWEEN ? AND ?", []any{int64(set[0].Lo), int64(set[len(set)-1].Hi)}, false
	}
	var b strings.Builder
	b.WriteByte('(')
	for i, r := range set {
		if i > 0 {
			b.WriteString(" OR ")
		}
		if r.Lo == r.Hi {
			b.WriteString(col + " = ?")
			args = append(args, int64(r.Lo))
			continue
		}
		b.WriteString(col + " BETWEEN ? AND ?")
		args = append(args, int64(r.Lo), int64(r.Hi))
	}
	b.WriteByte(')')
	return b.String(), args, true
}
