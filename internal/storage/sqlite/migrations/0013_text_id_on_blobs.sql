-- 0013: a blob's full-text entry id moves onto its blobs row (text_id),
-- and blob_text goes. Finding and making an entry went through
-- blob_text's unique index on the 64-character blob id, a random page of
-- it per delivered message, plus sqlite_sequence for AUTOINCREMENT: a
-- tenth of a delivery's writes. The blobs row is written by the delivery
-- anyway. Ids are still never reused: the counter 'text_id' continues
-- from the highest id blob_text ever gave.
ALTER TABLE blobs ADD COLUMN text_id INTEGER;
UPDATE blobs SET text_id = (SELECT t.id FROM blob_text t WHERE t.blob_id = blobs.id);
CREATE INDEX blobs_text ON blobs(text_id) WHERE text_id IS NOT NULL;
INSERT OR REPLACE INTO counters (name, value)
	SELECT 'text_id', max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'blob_text'), 0),
		coalesce((SELECT max(id) FROM blob_text), 0));
DROP TABLE blob_text;
