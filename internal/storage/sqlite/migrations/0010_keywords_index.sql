-- 0010: the keywords in use in a mailbox (IMAP announces them in FLAGS at
-- every SELECT) come from the few rows that have any, not from a scan.
CREATE INDEX messages_keywords ON messages(mailbox_id, keywords) WHERE keywords <> '';
