-- 0005: SEARCH BODY/TEXT finds the matching full-text entries first, then
-- the rows of one mailbox that use them. Without this index every search
-- scanned the whole mailbox to compare text_id with the matches (0004
-- dropped the per-row index, whose rowid was the message row's own id).
-- mailbox_id leads so that one blob shared by many mailboxes (list mail)
-- costs a seek per entry, not a visit to every row that shares it.

CREATE INDEX messages_text ON messages(mailbox_id, text_id);
