-- 0003: per-mailbox counts (messages, unseen, \Deleted, bytes) kept on the
-- mailbox row, so STATUS reads one row instead of scanning the mailbox.
--
-- They are maintained by the Go write paths in the same transaction (mostly
-- the same statement) that adds, removes or re-flags message rows, not by
-- triggers: every such path already holds the mailbox row lock (see wtx),
-- and already updates that row (uidnext, highestmodseq), so the counts ride
-- along at no extra round trip or row version; a per-row trigger would add
-- one mailbox row version per message delivered. counts_test.go checks the
-- counts against a recount after every kind of change.

ALTER TABLE mailboxes
	ADD COLUMN n_messages bigint NOT NULL DEFAULT 0,
	ADD COLUMN n_unseen bigint NOT NULL DEFAULT 0,
	ADD COLUMN n_deleted bigint NOT NULL DEFAULT 0,
	ADD COLUMN n_size bigint NOT NULL DEFAULT 0;

-- Backfill, in the migration's one transaction. A node still running an
-- older binary would keep writing without maintaining the counts, so
-- upgrade with the old nodes stopped (as for any schema change).
UPDATE mailboxes mb SET
	n_messages = c.n, n_unseen = c.unseen, n_deleted = c.deleted, n_size = c.size
FROM (SELECT mailbox_id,
		count(*) AS n,
		count(*) FILTER (WHERE NOT ('\Seen' = ANY(flags))) AS unseen,
		count(*) FILTER (WHERE '\Deleted' = ANY(flags)) AS deleted,
		coalesce(sum(size), 0) AS size
	FROM messages GROUP BY mailbox_id) c
WHERE mb.id = c.mailbox_id;
