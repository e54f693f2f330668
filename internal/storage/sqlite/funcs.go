package sqlite

import (
	"database/sql/driver"
	"strings"
	"sync"

	sqlite "modernc.org/sqlite"
)

var (
	registerOnce sync.Once
	// pageCacheErr is why the page cache block is not in use (nil when
	// it is): see pagecache.go.
	pageCacheErr error
)

// registerFunctions adds Roost's SQL functions to the driver and installs
// the page cache block. Both are process-wide, so it happens once, at the
// first Open.
func registerFunctions() {
	registerOnce.Do(func() {
		pageCacheErr = configurePageCache()
		sqlite.MustRegisterDeterministicScalarFunction("roost_contains", 2, sqlContains)
		sqlite.MustRegisterDeterministicScalarFunction("roost_header", 3, sqlHeader)
		sqlite.MustRegisterDeterministicScalarFunction("roost_blob_text", 2, sqlBlobText)
		// Not deterministic: the answer depends on what the indexer
		// has taken meanwhile.
		sqlite.MustRegisterScalarFunction("roost_pending_text", 3, sqlPendingText)
	})
}

func asString(v driver.Value) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

// sqlContains is roost_contains(haystack, needle): a case-insensitive
// substring test with Unicode case folding (SQLite's lower() folds ASCII
// only). RFC 9051 section 6.4.4: string searches are case-insensitive
// substring matches.
func sqlContains(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	if containsFold(asString(args[0]), asString(args[1])) {
		return int64(1), nil
	}
	return int64(0), nil
}

func containsFold(hay, needle string) bool {
	if needle == "" {
		return true
	}
	return strings.Contains(strings.ToLower(hay), strings.ToLower(needle))
}

// sqlHeader is roost_header(header_text, name, value): whether the header
// block has a field called name (case-insensitive) whose value contains
// value; an empty value matches any such field (RFC 9051 section 6.4.4,
// HEADER).
func sqlHeader(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	if headerHas(asString(args[0]), asString(args[1]), asString(args[2])) {
		return int64(1), nil
	}
	return int64(0), nil
}

func headerHas(header, name, value string) bool {
	var cur string // the field being unfolded
	check := func() bool {
		k, v, ok := strings.Cut(cur, ":")
		return ok && strings.EqualFold(strings.TrimSpace(k), name) && containsFold(v, value)
	}
	for line := range strings.SplitSeq(header, "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line != "" && (line[0] == ' ' || line[0] == '\t') {
			cur += " " + strings.TrimSpace(line)
			continue
		}
		if cur != "" && check() {
			return true
		}
		cur = line
	}
	return cur != "" && check()
}
