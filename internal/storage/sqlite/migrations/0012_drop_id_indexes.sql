-- 0012: EMAILID and THREADID (RFC 8474) are searched within the selected
-- mailbox, which the (mailbox_id, uid) index already walks; nothing looks
-- them up account-wide. Their account-wide indexes took a random page
-- each per delivered message (content hashes), for no reader.
DROP INDEX IF EXISTS messages_email;
DROP INDEX IF EXISTS messages_thread;
