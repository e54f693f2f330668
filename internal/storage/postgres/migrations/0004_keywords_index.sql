-- 0004: the keywords in use in a mailbox (IMAP announces them in FLAGS at
-- every SELECT) come from the rows that have any, not from a scan. A row
-- has a keyword when its flags are not all system flags; the query repeats
-- this predicate so the planner can use the index.
CREATE INDEX messages_keywords ON messages(mailbox_id)
	WHERE NOT (flags <@ ARRAY['\Answered', '\Deleted', '\Draft', '\Flagged', '\Seen']::text[]);
