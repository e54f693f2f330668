-- 0003: the POP3 size of each message (every line end counted as CRLF,
-- plus a final CRLF when missing; mailstore.LineSize), so a POP3 login
-- lists its maildrop without reading every blob. Existing rows are filled
-- in by this step's Go code (lineSizeBackfill in migrate.go), which reads
-- their blobs; the default 0 means "not known" to readers.

ALTER TABLE messages ADD COLUMN line_size INTEGER NOT NULL DEFAULT 0;
