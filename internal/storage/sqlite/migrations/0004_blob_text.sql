-- 0004: the full-text index is kept per blob, not per message row. A
-- message delivered to ten recipients, or copied, is one blob: its text is
-- indexed once. blob_text names each indexed blob; its id (never reused,
-- hence AUTOINCREMENT) is the rowid of the blob's row in blob_fts and is
-- copied into messages.text_id, so SEARCH joins a message to its text on
-- an integer key. A blob_text row lives as long as its blob (see
-- blobtext.go); blobs that only the outbound queue holds are not indexed.

CREATE TABLE blob_text (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	blob_id TEXT NOT NULL UNIQUE
);

-- The trigram tokenizer makes MATCH a case-insensitive substring test for
-- needles of 3 characters or more.
CREATE VIRTUAL TABLE blob_fts USING fts5(header, body, tokenize = 'trigram');

ALTER TABLE messages ADD COLUMN text_id INTEGER NOT NULL DEFAULT 0;

-- Existing text moves over from the per-row index: one entry per blob,
-- taken from the blob's oldest message row (every row of a blob was
-- indexed from the same bytes). Retained (expunged) messages had no index
-- entry and get none; a restore indexes them again.
INSERT INTO blob_text (blob_id)
	SELECT blob_id FROM messages GROUP BY blob_id ORDER BY min(id);

INSERT INTO blob_fts (rowid, header, body)
	SELECT t.id, f.header, f.body
	FROM blob_text t
	JOIN (SELECT blob_id, min(id) AS first FROM messages GROUP BY blob_id) g ON g.blob_id = t.blob_id
	JOIN messages_fts f ON f.rowid = g.first
	ORDER BY t.id;

UPDATE messages SET text_id = (SELECT t.id FROM blob_text t WHERE t.blob_id = messages.blob_id);

DROP TABLE messages_fts;
