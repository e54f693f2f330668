-- 0007: a message's text (the header block and the decoded body text that
-- substring SEARCH tests) is kept once per blob instead of on every message
-- row. A message delivered to ten recipients, or copied, had its text
-- stored and put in the pg_trgm GIN indexes once per row; the text is a
-- function of the blob's bytes, so one copy serves every row. Rows of a
-- deleted blob go with it; a blob whose only references are retention
-- rows gets its text back when a message is restored.
-- Not compatible with nodes still running release 6 code: their message
-- INSERTs name the dropped columns and fail (README: stop them first).
-- Keeping the columns instead would let such a node store messages whose
-- text no new node's search could find.
CREATE TABLE blob_text (
	id          text PRIMARY KEY REFERENCES blobs(id) ON DELETE CASCADE,
	header_text text NOT NULL,
	body_text   text NOT NULL
);
INSERT INTO blob_text (id, header_text, body_text)
	SELECT DISTINCT ON (m.blob_id) m.blob_id, m.header_text, m.body_text
	FROM messages m JOIN blobs b ON b.id = m.blob_id
	ORDER BY m.blob_id;
-- A search takes the matching blobs from the GIN indexes and finds the
-- mailbox's rows using them by this index, not by reading every row.
CREATE INDEX messages_blob ON messages (mailbox_id, blob_id);
CREATE INDEX blob_text_header_trgm ON blob_text USING gin (header_text gin_trgm_ops);
CREATE INDEX blob_text_body_trgm ON blob_text USING gin (body_text gin_trgm_ops);
DROP INDEX IF EXISTS messages_header_trgm;
DROP INDEX IF EXISTS messages_body_trgm;
ALTER TABLE messages DROP COLUMN header_text, DROP COLUMN body_text;
