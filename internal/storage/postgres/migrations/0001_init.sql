-- 0001: the initial schema.
--
-- Lock order in every write transaction (see tx.go): account rows (by id),
-- then mailbox rows, then message and blob rows. modseq lives on the account
-- row, uidnext on the mailbox row, so SELECT ... FOR UPDATE on those rows is
-- what serialises allocation across nodes.

CREATE EXTENSION IF NOT EXISTS pg_trgm;

CREATE SEQUENCE uidvalidity_seq MINVALUE 1 MAXVALUE 4294967295;

CREATE TABLE domains (
	name    text PRIMARY KEY,
	created timestamptz NOT NULL
);

CREATE TABLE accounts (
	id             bigserial PRIMARY KEY,
	name           text NOT NULL UNIQUE,
	domain         text NOT NULL REFERENCES domains(name),
	password_hash  text NOT NULL,
	quota_bytes    bigint NOT NULL DEFAULT 0,
	quota_messages bigint NOT NULL DEFAULT 0,
	used_bytes     bigint NOT NULL DEFAULT 0,
	used_messages  bigint NOT NULL DEFAULT 0,
	modseq         bigint NOT NULL DEFAULT 0,
	created        timestamptz NOT NULL
);
CREATE INDEX accounts_domain ON accounts(domain);

CREATE TABLE aliases (
	address    text PRIMARY KEY,
	domain     text NOT NULL REFERENCES domains(name),
	account_id bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE
);
CREATE INDEX aliases_account ON aliases(account_id);
CREATE INDEX aliases_domain ON aliases(domain);

-- A deleted mailbox keeps its row (deleted, modseq of the deletion) so the
-- change feed can report it; its name is free for a new incarnation.
CREATE TABLE mailboxes (
	id             bigserial PRIMARY KEY,
	account_id     bigint NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	name           text NOT NULL,
	special_use    text NOT NULL DEFAULT '',
	uidvalidity    bigint NOT NULL,
	uidnext        bigint NOT NULL DEFAULT 1,
	highestmodseq  bigint NOT NULL DEFAULT 0,
	vanished_floor bigint NOT NULL DEFAULT 0,
	subscribed     boolean NOT NULL DEFAULT false,
	modseq         bigint NOT NULL,
	deleted        boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX mailboxes_name ON mailboxes(account_id, name) WHERE NOT deleted;
CREATE INDEX mailboxes_modseq ON mailboxes(account_id, modseq);

-- refs counts the rows (messages, deleted_messages, queue) that point at a
-- blob; the bytes themselves live in the blob store (blob_data here).
CREATE TABLE blobs (
	id   text PRIMARY KEY, -- hex SHA-256
	refs bigint NOT NULL,
	size bigint NOT NULL
);
CREATE INDEX blobs_unreferenced ON blobs(id) WHERE refs <= 0;

-- The PostgreSQL blob store's table (blob.go); another BlobStore keeps the
-- bytes elsewhere and leaves this table empty.
CREATE TABLE blob_data (
	id   text PRIMARY KEY,
	data bytea NOT NULL
);
ALTER TABLE blob_data ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE messages (
	mailbox_id    bigint NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
	uid           bigint NOT NULL,
	account_id    bigint NOT NULL,
	modseq        bigint NOT NULL,
	createmodseq  bigint NOT NULL,
	flags         text[] NOT NULL DEFAULT '{}', -- mailstore.NormalizeFlags order
	internal_date timestamptz NOT NULL,
	save_date     timestamptz NOT NULL,
	sent_day      date NOT NULL, -- the Date: header's day in its own zone
	size          bigint NOT NULL,
	blob_id       text NOT NULL,
	email_id      text NOT NULL,
	thread_id     text NOT NULL,
	message_id    text NOT NULL DEFAULT '',
	hdr_from      text NOT NULL DEFAULT '',
	hdr_to        text NOT NULL DEFAULT '',
	hdr_cc        text NOT NULL DEFAULT '',
	hdr_bcc       text NOT NULL DEFAULT '',
	hdr_subject   text NOT NULL DEFAULT '',
	envelope      bytea, -- JSON of message.Envelope
	body          bytea, -- JSON of message.Part
	preview       text NOT NULL DEFAULT '',
	header_text   text NOT NULL DEFAULT '',
	body_text     text NOT NULL DEFAULT '',
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages(account_id, modseq);
CREATE INDEX messages_msgid ON messages(mailbox_id, message_id) WHERE message_id <> '';
CREATE INDEX messages_email ON messages(account_id, email_id);
CREATE INDEX messages_thread ON messages(account_id, thread_id);
-- SEARCH HEADER/BODY/TEXT are substring tests (ILIKE '%x%', ~*): trigram
-- GIN indexes answer them without scanning every body.
CREATE INDEX messages_header_trgm ON messages USING gin (header_text gin_trgm_ops);
CREATE INDEX messages_body_trgm ON messages USING gin (body_text gin_trgm_ops);

CREATE TABLE tombstones (
	mailbox_id bigint NOT NULL,
	uid        bigint NOT NULL,
	account_id bigint NOT NULL,
	modseq     bigint NOT NULL,
	expunged   timestamptz NOT NULL,
	PRIMARY KEY (mailbox_id, uid)
);
CREATE INDEX tombstones_modseq ON tombstones(account_id, modseq);
CREATE INDEX tombstones_mailbox_modseq ON tombstones(mailbox_id, modseq);
CREATE INDEX tombstones_expunged ON tombstones(expunged);

-- The retention area: each row holds one reference on its blob.
CREATE TABLE deleted_messages (
	id            bigserial PRIMARY KEY,
	account_id    bigint NOT NULL,
	mailbox_id    bigint NOT NULL,
	mailbox_name  text NOT NULL,
	uid           bigint NOT NULL,
	flags         text[] NOT NULL,
	internal_date timestamptz NOT NULL,
	expunged      timestamptz NOT NULL,
	size          bigint NOT NULL,
	hdr_from      text NOT NULL,
	hdr_subject   text NOT NULL,
	blob_id       text NOT NULL
);
CREATE INDEX deleted_messages_account ON deleted_messages(account_id);
CREATE INDEX deleted_messages_expunged ON deleted_messages(expunged);

CREATE TABLE pop_hidden (
	account_id bigint NOT NULL,
	mailbox_id bigint NOT NULL,
	view       text NOT NULL,
	uid        bigint NOT NULL,
	PRIMARY KEY (account_id, mailbox_id, view, uid)
);

-- The outbound queue: each row holds one reference on its blob.
CREATE TABLE queue (
	id           bigserial PRIMARY KEY,
	account_id   bigint NOT NULL DEFAULT 0,
	sender       text NOT NULL,
	recipients   text[] NOT NULL,
	domain       text NOT NULL,
	blob_id      text NOT NULL,
	size         bigint NOT NULL,
	created      timestamptz NOT NULL,
	attempts     integer NOT NULL DEFAULT 0,
	next_attempt timestamptz NOT NULL,
	last_error   text NOT NULL DEFAULT '',
	warned       boolean NOT NULL DEFAULT false,
	lease_owner  text NOT NULL DEFAULT '',
	lease_until  timestamptz
);
CREATE INDEX queue_due ON queue(next_attempt);

CREATE TABLE leases (
	name  text PRIMARY KEY,
	owner text NOT NULL,
	until timestamptz NOT NULL
);
