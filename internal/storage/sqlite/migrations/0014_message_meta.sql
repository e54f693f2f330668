-- 0014: ENVELOPE, BODYSTRUCTURE and the preview move out of messages into
-- message_meta, keyed by the same row id (a mailbox's rows contiguous in
-- both). They were two thirds of a row, so a page held 4 rows: SEARCH on
-- a header, a flag FETCH over a mailbox, anything that walks rows read
-- three times the pages it needed, and a reader reads every page again
-- after any commit (its cache is emptied). Only FETCH of those items reads
-- message_meta. messages is rebuilt to pack its rows, and without
-- AUTOINCREMENT: ids have been mailbox_id << 32 | uid since 0008, so the
-- sqlite_sequence row it kept up to date on every insert was a write for
-- nothing. Rows leave message_meta with their messages row (ON DELETE
-- CASCADE; MOVE keeps a row's id).

CREATE TABLE messages_new (
	id            INTEGER PRIMARY KEY,
	account_id    INTEGER NOT NULL,
	mailbox_id    INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           INTEGER NOT NULL,
	modseq        INTEGER NOT NULL,
	createmodseq  INTEGER NOT NULL,
	flags         INTEGER NOT NULL DEFAULT 0,
	keywords      TEXT NOT NULL DEFAULT '',
	internal_date INTEGER NOT NULL,
	save_date     INTEGER NOT NULL,
	sent_day      INTEGER NOT NULL, -- yyyymmdd of the Date: header in its own zone
	size          INTEGER NOT NULL,
	line_size     INTEGER NOT NULL DEFAULT 0,
	blob_id       TEXT NOT NULL,
	text_id       INTEGER NOT NULL DEFAULT 0,
	email_id      TEXT NOT NULL,
	thread_id     TEXT NOT NULL,
	message_id    TEXT NOT NULL DEFAULT '',
	hdr_from      TEXT NOT NULL DEFAULT '',
	hdr_to        TEXT NOT NULL DEFAULT '',
	hdr_cc        TEXT NOT NULL DEFAULT '',
	hdr_bcc       TEXT NOT NULL DEFAULT '',
	hdr_subject   TEXT NOT NULL DEFAULT '',
	UNIQUE (mailbox_id, uid)
);
INSERT INTO messages_new (id, account_id, mailbox_id, uid, modseq, createmodseq, flags, keywords, internal_date,
		save_date, sent_day, size, line_size, blob_id, text_id, email_id, thread_id, message_id,
		hdr_from, hdr_to, hdr_cc, hdr_bcc, hdr_subject)
	SELECT id, account_id, mailbox_id, uid, modseq, createmodseq, flags, keywords, internal_date,
		save_date, sent_day, size, line_size, blob_id, text_id, email_id, thread_id, message_id,
		hdr_from, hdr_to, hdr_cc, hdr_bcc, hdr_subject
	FROM messages ORDER BY id;
-- Without the foreign key for now: dropping the old table below deletes
-- its rows, which would cascade.
CREATE TABLE meta_copy AS SELECT id, envelope, body, preview FROM messages;

-- The counts triggers go first, so that dropping the table does not
-- count its rows out of the mailboxes.
DROP TRIGGER messages_count_insert;
DROP TRIGGER messages_count_delete;
DROP TRIGGER messages_count_update;
DROP TABLE messages;
ALTER TABLE messages_new RENAME TO messages;
DELETE FROM sqlite_sequence WHERE name = 'messages';

CREATE TABLE message_meta (
	id       INTEGER PRIMARY KEY REFERENCES messages(id) ON DELETE CASCADE,
	envelope TEXT NOT NULL,
	body     TEXT NOT NULL,
	preview  TEXT NOT NULL
);
INSERT INTO message_meta (id, envelope, body, preview) SELECT id, envelope, body, preview FROM meta_copy ORDER BY id;
DROP TABLE meta_copy;

CREATE INDEX messages_modseq ON messages(account_id, modseq);
CREATE INDEX messages_msgid ON messages(mailbox_id, message_id) WHERE message_id <> '';
CREATE INDEX messages_text ON messages(mailbox_id, text_id);
CREATE INDEX messages_unseen ON messages(mailbox_id, uid) WHERE flags & 1 = 0;
CREATE INDEX messages_deleted ON messages(mailbox_id, uid) WHERE flags & 8 <> 0;
CREATE INDEX messages_keywords ON messages(mailbox_id, keywords) WHERE keywords <> '';

CREATE TRIGGER messages_count_insert AFTER INSERT ON messages BEGIN
	UPDATE mailboxes SET n_messages = n_messages + 1,
		n_unseen = n_unseen + (NEW.flags & 1 = 0),
		n_deleted = n_deleted + (NEW.flags & 8 <> 0),
		n_size = n_size + NEW.size
	WHERE id = NEW.mailbox_id;
END;
CREATE TRIGGER messages_count_delete AFTER DELETE ON messages BEGIN
	UPDATE mailboxes SET n_messages = n_messages - 1,
		n_unseen = n_unseen - (OLD.flags & 1 = 0),
		n_deleted = n_deleted - (OLD.flags & 8 <> 0),
		n_size = n_size - OLD.size
	WHERE id = OLD.mailbox_id;
END;
CREATE TRIGGER messages_count_update AFTER UPDATE OF mailbox_id, flags, size ON messages BEGIN
	UPDATE mailboxes SET n_messages = n_messages - 1,
		n_unseen = n_unseen - (OLD.flags & 1 = 0),
		n_deleted = n_deleted - (OLD.flags & 8 <> 0),
		n_size = n_size - OLD.size
	WHERE id = OLD.mailbox_id;
	UPDATE mailboxes SET n_messages = n_messages + 1,
		n_unseen = n_unseen + (NEW.flags & 1 = 0),
		n_deleted = n_deleted + (NEW.flags & 8 <> 0),
		n_size = n_size + NEW.size
	WHERE id = NEW.mailbox_id;
END;
