-- 0001: the initial schema. Times are Unix nanoseconds (UTC).

CREATE TABLE counters (
	name  TEXT PRIMARY KEY,
	value INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE domains (
	name    TEXT PRIMARY KEY,
	created INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE accounts (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	name           TEXT NOT NULL UNIQUE,
	domain         TEXT NOT NULL REFERENCES domains(name),
	password_hash  TEXT NOT NULL,
	quota_bytes    INTEGER NOT NULL DEFAULT 0,
	quota_messages INTEGER NOT NULL DEFAULT 0,
	used_bytes     INTEGER NOT NULL DEFAULT 0,
	used_messages  INTEGER NOT NULL DEFAULT 0,
	modseq         INTEGER NOT NULL DEFAULT 0,
	created        INTEGER NOT NULL
);
CREATE INDEX accounts_domain ON accounts(domain);

CREATE TABLE aliases (
	address    TEXT PRIMARY KEY,
	domain     TEXT NOT NULL REFERENCES domains(name),
	account_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE
);
CREATE INDEX aliases_account ON aliases(account_id);
CREATE INDEX aliases_domain ON aliases(domain);

-- A deleted mailbox keeps its row (deleted = 1, modseq of the deletion) so
-- the change feed can report it; its name is free for a new incarnation.
CREATE TABLE mailboxes (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id     INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name           TEXT NOT NULL,
	special_use    TEXT NOT NULL DEFAULT '',
	uidvalidity    INTEGER NOT NULL,
	uidnext        INTEGER NOT NULL DEFAULT 1,
	highestmodseq  INTEGER NOT NULL DEFAULT 0,
	vanished_floor INTEGER NOT NULL DEFAULT 0,
	subscribed     INTEGER NOT NULL DEFAULT 0,
	modseq         INTEGER NOT NULL,
	changed        INTEGER NOT NULL,
	deleted        INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX mailboxes_name ON mailboxes(account_id, name) WHERE deleted = 0;
CREATE INDEX mailboxes_modseq ON mailboxes(account_id, modseq);

CREATE TABLE blobs (
	id   TEXT NOT NULL UNIQUE, -- hex SHA-256 of data
	refs INTEGER NOT NULL,
	size INTEGER NOT NULL,
	data BLOB NOT NULL
);

-- flags is a bitmask of the system flags (see flags.go); keywords is a
-- space-separated list.
CREATE TABLE messages (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
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
	blob_id       TEXT NOT NULL,
	email_id      TEXT NOT NULL,
	thread_id     TEXT NOT NULL,
	message_id    TEXT NOT NULL DEFAULT '',
	hdr_from      TEXT NOT NULL DEFAULT '',
	hdr_to        TEXT NOT NULL DEFAULT '',
	hdr_cc        TEXT NOT NULL DEFAULT '',
	hdr_bcc       TEXT NOT NULL DEFAULT '',
	hdr_subject   TEXT NOT NULL DEFAULT '',
	envelope      TEXT NOT NULL DEFAULT '',
	body          TEXT NOT NULL DEFAULT '',
	preview       TEXT NOT NULL DEFAULT '',
	UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages(account_id, modseq);
CREATE INDEX messages_msgid ON messages(mailbox_id, message_id) WHERE message_id <> '';
CREATE INDEX messages_email ON messages(account_id, email_id);
CREATE INDEX messages_thread ON messages(account_id, thread_id);

-- Full-text search: rowid = messages.id. The trigram tokenizer makes MATCH
-- a case-insensitive substring test for needles of 3 characters or more.
CREATE VIRTUAL TABLE messages_fts USING fts5(header, body, tokenize = 'trigram');

CREATE TABLE tombstones (
	account_id INTEGER NOT NULL,
	mailbox_id INTEGER NOT NULL,
	uid        INTEGER NOT NULL,
	modseq     INTEGER NOT NULL,
	expunged   INTEGER NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
) WITHOUT ROWID;
CREATE INDEX tombstones_modseq ON tombstones(account_id, modseq);
CREATE INDEX tombstones_mailbox_modseq ON tombstones(mailbox_id, modseq);
CREATE INDEX tombstones_expunged ON tombstones(expunged);

-- The retention area: each row holds one reference on its blob.
CREATE TABLE deleted_messages (
	id            INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id    INTEGER NOT NULL,
	mailbox_id    INTEGER NOT NULL,
	mailbox_name  TEXT NOT NULL,
	uid           INTEGER NOT NULL,
	flags         INTEGER NOT NULL,
	keywords      TEXT NOT NULL,
	internal_date INTEGER NOT NULL,
	expunged      INTEGER NOT NULL,
	size          INTEGER NOT NULL,
	hdr_from      TEXT NOT NULL,
	hdr_subject   TEXT NOT NULL,
	blob_id       TEXT NOT NULL
);
CREATE INDEX deleted_messages_account ON deleted_messages(account_id);
CREATE INDEX deleted_messages_expunged ON deleted_messages(expunged);

CREATE TABLE pop_hidden (
	account_id INTEGER NOT NULL,
	mailbox_id INTEGER NOT NULL,
	view       TEXT NOT NULL,
	uid        INTEGER NOT NULL,
	PRIMARY KEY (account_id, mailbox_id, view, uid)
) WITHOUT ROWID;

-- The outbound queue: each row holds one reference on its blob.
CREATE TABLE queue (
	id           INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id   INTEGER NOT NULL DEFAULT 0,
	sender       TEXT NOT NULL,
	recipients   TEXT NOT NULL, -- JSON array
	domain       TEXT NOT NULL,
	blob_id      TEXT NOT NULL,
	size         INTEGER NOT NULL,
	created      INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_attempt INTEGER NOT NULL,
	last_error   TEXT NOT NULL DEFAULT '',
	warned       INTEGER NOT NULL DEFAULT 0,
	lease_owner  TEXT NOT NULL DEFAULT '',
	lease_until  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX queue_due ON queue(next_attempt);

CREATE TABLE leases (
	name  TEXT PRIMARY KEY,
	owner TEXT NOT NULL,
	until INTEGER NOT NULL
) WITHOUT ROWID;
