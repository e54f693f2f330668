-- 0006: small partial indexes for the two flags every client asks about.
-- SELECT looks for the first message without \Seen (UNSEEN) and EXPUNGE
-- for the messages with \Deleted; both scanned every row of the mailbox,
-- wide rows with envelope and body structure, read back from disk after
-- each commit. Search writes these two tests with the same literal bits
-- (1 = \Seen, 8 = \Deleted: flags.go), which is what lets the planner use
-- a partial index.

CREATE INDEX messages_unseen ON messages(mailbox_id, uid) WHERE flags & 1 = 0;
CREATE INDEX messages_deleted ON messages(mailbox_id, uid) WHERE flags & 8 <> 0;
