-- 0006: EMAILID and THREADID (RFC 8474) are searched within the selected
-- mailbox, which the (mailbox_id, uid) key already walks; nothing looks
-- them up account-wide, so their indexes were only a cost on every insert.
DROP INDEX IF EXISTS messages_email;
DROP INDEX IF EXISTS messages_thread;
