-- 0007: full-text indexing leaves the delivery transaction. Tokenising a
-- message's text and flushing a new FTS5 segment at every commit was a
-- quarter of the writer's time under a delivery load, paid while the
-- senders waited for their 250. A new blob's text now goes into
-- fts_pending in the same transaction as its message rows (so nothing
-- acknowledged can miss the index), and the writer moves pending text
-- into blob_fts in large batches when it is idle or the backlog grows
-- (blobtext.go). Search reads fts_pending too, so results never depend
-- on whether the indexer has run.

CREATE TABLE fts_pending (
	id     INTEGER PRIMARY KEY, -- blob_text.id: the rowid it gets in blob_fts
	header TEXT NOT NULL,
	body   TEXT NOT NULL
);
