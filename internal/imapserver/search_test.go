package imapserver

import "testing"

// TestSaveWithMinMaxSavesOnlyThose: a client runs SEARCH RETURN (MIN SAVE)
// and then FETCH $ or STORE $; only the lowest (or highest) match must be
// touched, not every message the search found (RFC 5182 section 2.1).
func TestSaveWithMinMaxSavesOnlyThose(t *testing.T) {
	env := newTestEnv(t, Config{})
	for i := 1; i <= 4; i++ {
		env.deliver(t, alice, testMessage(i))
	}
	c := env.login(t, alice)
	c.ok("SELECT INBOX")
	steps := []struct{ ret, want string }{
		{"MIN SAVE", `^\* SEARCH 2$`},
		{"SAVE MAX", `^\* SEARCH 4$`},
		{"MIN MAX SAVE", `^\* SEARCH 2 4$`},
		{"MIN SAVE COUNT", `^\* SEARCH 2 3 4$`},
		{"MAX SAVE ALL", `^\* SEARCH 2 3 4$`},
		{"SAVE", `^\* SEARCH 2 3 4$`},
	}
	for _, s := range steps {
		c.ok("SEARCH RETURN (" + s.ret + ") 2:4")
		mustHave(t, c.ok("SEARCH $"), s.want)
	}
	// With nothing found, "$" is empty whatever the options.
	c.ok("SEARCH RETURN (MIN SAVE) SUBJECT nomatch")
	mustHave(t, c.ok("SEARCH $"), `^\* SEARCH$`)
}

// TestSearchSubjectSplitEncodedWord: a mailer cut "café" between two
// encoded words in the middle of the "é". Mail readers show "café", so
// SEARCH SUBJECT café (and FROM, TO, HEADER, TEXT) must find the message
// rather than the "cafÃ©" its halves decode to one by one.
func TestSearchSubjectSplitEncodedWord(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.deliver(t, alice, "From: =?utf-8?b?Sm/D?= =?utf-8?b?q2w=?= <j@example.org>\r\nSubject: =?utf-8?q?caf=C3?= =?utf-8?q?=A9_ouvert?=\r\n\r\nx\r\n")
	c := env.login(t, alice)
	c.ok("SELECT INBOX")
	mustHave(t, c.ok("SEARCH SUBJECT café"), `^\* SEARCH 1$`)
	mustHave(t, c.ok("SEARCH FROM Joël"), `^\* SEARCH 1$`)
	mustHave(t, c.ok("SEARCH HEADER Subject \"café ouvert\""), `^\* SEARCH 1$`)
	mustHave(t, c.ok("SEARCH TEXT café"), `^\* SEARCH 1$`)
}

// TestSearchBodyFindsHTMLAlternative: a newsletter whose text/plain part
// only says "view this mail in a browser" and whose HTML part holds the
// content. The word the reader sees must be found by SEARCH BODY and
// SEARCH TEXT (RFC 9051 section 6.4.4).
func TestSearchBodyFindsHTMLAlternative(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.deliver(t, alice, "From: a@example.org\r\nSubject: news\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n--A\r\nContent-Type: text/plain\r\n\r\nView this mail in a browser.\r\n--A\r\nContent-Type: text/html\r\n\r\n<p>Quarterly results inside</p>\r\n--A--\r\n")
	c := env.login(t, alice)
	c.ok("SELECT INBOX")
	mustHave(t, c.ok("SEARCH BODY quarterly"), `^\* SEARCH 1$`)
	mustHave(t, c.ok("SEARCH TEXT quarterly"), `^\* SEARCH 1$`)
	mustHave(t, c.ok("SEARCH BODY browser"), `^\* SEARCH 1$`)
}
