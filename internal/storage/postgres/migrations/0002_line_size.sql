-- 0002: messages.line_size, the size POP3 reports (mailstore.LineSize:
-- every line end counted as CRLF). Rows stored before this version keep 0,
-- which the interface defines as "not stored": readers compute it then.

ALTER TABLE messages ADD COLUMN line_size bigint NOT NULL DEFAULT 0;
