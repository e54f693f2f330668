-- 0008: IMAP's EXPUNGE and CLOSE hand the store every message the session
-- knows and let it find the \Deleted ones; this index holds just those,
-- so the write does not walk the whole mailbox. The query repeats the
-- predicate so the planner can use it.
CREATE INDEX messages_deleted ON messages(mailbox_id, uid) WHERE '\Deleted' = ANY(flags);
