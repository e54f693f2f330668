-- 0011: delivery status notification parameters of a queued message (RFC
-- 3461): RET and ENVID per message; NOTIFY and ORCPT per recipient as JSON
-- arrays aligned with recipients (NOTIFY's keywords comma-joined, "" for a
-- recipient without the parameter). The defaults read an older row as "no
-- DSN parameters given".
ALTER TABLE queue ADD COLUMN dsn_ret TEXT NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN dsn_envid TEXT NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN dsn_notify TEXT NOT NULL DEFAULT '[]';
ALTER TABLE queue ADD COLUMN dsn_orcpt TEXT NOT NULL DEFAULT '[]';
