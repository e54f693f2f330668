-- 0009: the full-text index moves to a database file of its own (fts.db,
-- ftsdb.go), written by an indexer goroutine beside the writer instead of
-- by it. The text indexed so far goes back to fts_pending and is indexed
-- into the new file after the upgrade (searchable meanwhile, by a slower
-- scan); fts_dropped lists entries that were dropped while indexed, for
-- the indexer to remove from the new file.

INSERT INTO fts_pending (id, header, body)
	SELECT rowid, header, body FROM blob_fts WHERE rowid NOT IN (SELECT id FROM fts_pending);
DROP TABLE blob_fts;
CREATE TABLE fts_dropped (id INTEGER PRIMARY KEY);
