-- 0005: delivery status notification parameters of a queued message (RFC
-- 3461): RET and ENVID per message; NOTIFY and ORCPT per recipient as
-- arrays aligned with recipients (NOTIFY's keywords comma-joined, '' for a
-- recipient without the parameter). The defaults read an older row as "no
-- DSN parameters given".
ALTER TABLE queue ADD COLUMN dsn_ret text NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN dsn_envid text NOT NULL DEFAULT '';
ALTER TABLE queue ADD COLUMN dsn_notify text[] NOT NULL DEFAULT '{}';
ALTER TABLE queue ADD COLUMN dsn_orcpt text[] NOT NULL DEFAULT '{}';
