package sqlite

import (
	"database/sql/driver"
	"strconv"
	"sync"
	"sync/atomic"

	sqlite "modernc.org/sqlite"

	"github.com/roost-mail/roost/internal/message"
)

// Text waiting for the index. fts_pending names the entries the indexer
// has still to index; their text used to be written there too, in the
// delivery's transaction: 10 KB for a 10 KB message, written to the WAL,
// again by the checkpoint, and deleted once indexed, a fifth of the bytes
// a delivery wrote and a tenth of its throughput. The text is derived
// data (the raw message is in the blob), so now the writer hands it to
// the indexer in memory (pendingTexts) and writes the row with empty
// text. Whatever is not in memory (after a restart, entries made by
// another process, text past pendingMaxBytes) is extracted from the blob
// again, by the indexer and by searches alike. Rows written before this
// keep their text in fts_pending and are used as they are.

// ftsText is an entry's text: the header block and the body text.
type ftsText struct{ header, body string }

// pendingMaxBytes bounds the text kept in memory; past it, text is
// extracted from the blobs again when it is needed.
const pendingMaxBytes = 64 << 20

// pendingTexts is a store's text waiting for the index, by entry id.
type pendingTexts struct {
	handle int64 // names it to the SQL function roost_pending_text

	mu    sync.Mutex
	m     map[int64]ftsText // guarded by mu
	bytes int               // guarded by mu: the text in m
}

// pendingRegistry maps handles to live stores' texts: SQL functions are
// registered once for the process, so a search names its store's texts
// by handle.
var (
	pendingRegistry   sync.Map // int64 -> *pendingTexts
	pendingHandleNext atomic.Int64
)

func newPendingTexts() *pendingTexts {
	p := &pendingTexts{handle: pendingHandleNext.Add(1), m: map[int64]ftsText{}}
	pendingRegistry.Store(p.handle, p)
	return p
}

// close unregisters the texts (the store is closing).
func (p *pendingTexts) close() { pendingRegistry.Delete(p.handle) }

// put keeps t for entry id, unless the memory bound is reached.
func (p *pendingTexts) put(id int64, t ftsText) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(t.header) + len(t.body)
	if _, ok := p.m[id]; ok || p.bytes+n > pendingMaxBytes {
		return
	}
	p.m[id] = t
	p.bytes += n
}

func (p *pendingTexts) get(id int64) (ftsText, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.m[id]
	return t, ok
}

// drop forgets entries: indexed, or their blob is gone.
func (p *pendingTexts) drop(ids ...int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, id := range ids {
		if t, ok := p.m[id]; ok {
			p.bytes -= len(t.header) + len(t.body)
			delete(p.m, id)
		}
	}
}

// textOf extracts an entry's text from its raw message (a parse only:
// mailstore.Prepare would also hash it).
func textOf(raw []byte) ftsText {
	p := message.Parse(raw)
	return ftsText{p.HeaderText, p.BodyText}
}

// part returns the header ("header") or the body text.
func (t ftsText) part(name string) string {
	if name == "header" {
		return t.header
	}
	return t.body
}

// sqlPendingText is roost_pending_text(handle, id, part): the text of a
// pending entry held in memory, or NULL.
func sqlPendingText(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	h, _ := args[0].(int64)
	id, _ := args[1].(int64)
	v, ok := pendingRegistry.Load(h)
	if !ok {
		return nil, nil
	}
	t, ok := v.(*pendingTexts).get(id)
	if !ok {
		return nil, nil
	}
	return t.part(asString(args[2])), nil
}

// sqlBlobText is roost_blob_text(raw, part): the text extracted from a raw
// message, for a pending entry whose text is in neither the row nor
// memory.
func sqlBlobText(_ *sqlite.FunctionContext, args []driver.Value) (driver.Value, error) {
	raw, _ := args[0].([]byte)
	if raw == nil {
		return "", nil
	}
	return textOf(raw).part(asString(args[1])), nil
}

// pendingCol is the SQL expression for the text (col "header" or "body")
// of the fts_pending row aliased p: the row's own text if it has any (rows
// from before pendingTexts), else the text in memory, else the text
// extracted from the blob.
func pendingCol(handle int64, col string) string {
	h := strconv.FormatInt(handle, 10)
	return "(CASE WHEN p.header <> '' OR p.body <> '' THEN p." + col +
		" ELSE coalesce(roost_pending_text(" + h + ", p.id, '" + col + "'), roost_blob_text((SELECT b.data FROM blobs b WHERE b.text_id = p.id), '" + col + "')) END)"
}
