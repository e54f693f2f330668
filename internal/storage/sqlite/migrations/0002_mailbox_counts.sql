-- 0002: per-mailbox counts kept by triggers, so STATUS and SELECT read one
-- row instead of scanning the mailbox. Every path that adds, removes,
-- moves or re-flags a message row goes through these triggers.

ALTER TABLE mailboxes ADD COLUMN n_messages INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_unseen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_deleted INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN n_size INTEGER NOT NULL DEFAULT 0;

-- Flag bits as in flags.go: 1 = \Seen, 8 = \Deleted.
UPDATE mailboxes SET
	n_messages = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id),
	n_unseen = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id AND m.flags & 1 = 0),
	n_deleted = (SELECT count(*) FROM messages m WHERE m.mailbox_id = mailboxes.id AND m.flags & 8 <> 0),
	n_size = (SELECT coalesce(sum(size), 0) FROM messages m WHERE m.mailbox_id = mailboxes.id);

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
