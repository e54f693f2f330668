-- 0008: a message row's id becomes (mailbox_id << 32) | uid (rowID in
-- append.go). Ids were a global sequence, so the rows of one mailbox were
-- spread over the table among every other mailbox's deliveries, and
-- reading 200 messages after a commit (which empties a reader's page
-- cache) loaded some 200 pages. Keyed this way a mailbox's rows are
-- contiguous in UID order. No other table stores message row ids (the
-- full-text index is per blob since 0004), and the new ids cannot meet
-- the old ones (mailbox ids start at 1, so new ids are at least 2^32).

UPDATE messages SET id = (mailbox_id << 32) | uid;
