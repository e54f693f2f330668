package imapserver

import "testing"

// An IMAP4rev1 client that browses its subscriptions one level at a time
// (LSUB "" "%", then LSUB "" "foo/%") must see an unsubscribed parent of a
// subscribed mailbox, flagged \Noselect (RFC 3501 section 6.3.9).
// Without the fix LSUB "%" left foo out, so the subscribed foo/bar never
// appeared in the client's folder tree.
func TestLsubPercentListsUnsubscribedParent(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.login(t, alice)
	c.ok("CREATE foo/bar")
	c.ok("CREATE baz/qux")
	c.ok("SUBSCRIBE foo/bar")
	lines := c.ok(`LSUB "" "%"`)
	mustHave(t, lines, `^\* LSUB \([^)]*\\Noselect[^)]*\) "/" "foo"$`)
	// baz has no subscribed descendant: it stays out.
	if hasLine(lines, `"baz"$`) {
		t.Errorf("LSUB %% lists baz, which has no subscribed descendant:\n%q", lines)
	}
	mustHave(t, c.ok(`LSUB "" "foo/%"`), `^\* LSUB \([^)]*\) "/" "foo/bar"$`)
	// With "*" foo/bar is listed itself, so foo is not needed.
	lines = c.ok(`LSUB "" "*"`)
	mustHave(t, lines, `^\* LSUB \([^)]*\) "/" "foo/bar"$`)
	if hasLine(lines, `"foo"$`) {
		t.Errorf("LSUB * lists the unsubscribed foo beside foo/bar:\n%q", lines)
	}
}

// LIST (SUBSCRIBED RECURSIVEMATCH) returns an unsubscribed parent with
// CHILDINFO only when the pattern hides its subscribed descendant (RFC
// 5258 section 3.5); LIST (SUBSCRIBED) alone lists only subscribed names
// (RFC 5258 section 3.1). A client walking "%" learns that foo holds a
// subscription; with "*" it gets foo/bar and no redundant foo. Without the
// fix "*" also returned foo with CHILDINFO.
func TestListSubscribedRecursiveMatchChildInfo(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.login(t, alice)
	c.ok("CREATE foo/bar")
	c.ok("SUBSCRIBE foo/bar")
	mustHave(t, c.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "%"`),
		`^\* LIST \([^)]*\) "/" "foo" \("CHILDINFO" \("SUBSCRIBED"\)\)$`)
	lines := c.ok(`LIST (SUBSCRIBED RECURSIVEMATCH) "" "*"`)
	mustHave(t, lines, `^\* LIST \([^)]*\\Subscribed[^)]*\) "/" "foo/bar"$`)
	if hasLine(lines, `"foo"( |$)`) {
		t.Errorf("LIST (SUBSCRIBED RECURSIVEMATCH) * lists foo beside foo/bar:\n%q", lines)
	}
	if lines := c.ok(`LIST (SUBSCRIBED) "" "%"`); hasLine(lines, `"foo"( |$)`) {
		t.Errorf("LIST (SUBSCRIBED) %% lists the unsubscribed foo:\n%q", lines)
	}
}

// INBOX is case-insensitive (RFC 9051 section 5.1), also inside LIST
// patterns with wildcards. Without the fix LIST "" "Inbox*", "inbox%" and
// "inb*" returned no INBOX, and "inbox*" missed INBOX/Sub, so a client
// spelling INBOX in lower or mixed case saw no Inbox.
func TestListPatternMatchesInboxCaseInsensitively(t *testing.T) {
	env := newTestEnv(t, Config{})
	c := env.login(t, alice)
	c.ok("CREATE INBOX/Sub")
	c.ok("CREATE Inboxes")
	for _, p := range []string{`"Inbox*"`, `"inbox%"`, `"inb*"`, `"INBOX"`, `"iNbOx"`} {
		mustHave(t, c.ok(`LIST "" `+p), `^\* LIST \(.*\) "/" "INBOX"$`)
	}
	mustHave(t, c.ok(`LIST "" "inbox*"`), `^\* LIST \(.*\) "/" "INBOX/Sub"$`)
	mustHave(t, c.ok(`LIST "" "inbox/%"`), `^\* LIST \(.*\) "/" "INBOX/Sub"$`)
	// Only INBOX folds: Inboxes is an ordinary, case-sensitive name.
	if lines := c.ok(`LIST "" "inbox*"`); hasLine(lines, `"Inboxes"$`) {
		t.Errorf(`LIST "" "inbox*" matched Inboxes:`+"\n%q", lines)
	}
	mustHave(t, c.ok(`LIST "" "Inbox*"`), `^\* LIST \(.*\) "/" "Inboxes"$`)
}
