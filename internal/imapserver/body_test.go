package imapserver

import "testing"

// TestBodyStructureJoinsRFC2231Params: an attachment whose name was sent
// in RFC 2231 sections (as Outlook and others do for long or non-ASCII
// names) shows in BODYSTRUCTURE as one NAME (or FILENAME*) parameter, so
// clients that do not join the sections themselves still show its name
// instead of "Untitled" (RFC 9051 section 7.5.2).
func TestBodyStructureJoinsRFC2231Params(t *testing.T) {
	env := newTestEnv(t, Config{})
	env.deliver(t, alice, "From: a@example.org\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\n\r\nx\r\n"+
		"--B\r\nContent-Type: application/pdf; name*0=\"very-long-\"; name*1=\"report.pdf\"\r\n"+
		"Content-Disposition: attachment; filename*0*=utf-8''na%C3; filename*1*=%AFve; filename*2=\".pdf\"\r\n"+
		"Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--B--\r\n")
	c := env.login(t, alice)
	c.ok("SELECT INBOX")
	mustHave(t, c.ok("FETCH 1 BODYSTRUCTURE"),
		`\("APPLICATION" "PDF" \("NAME" "very-long-report.pdf"\) NIL NIL "BASE64" 4 NIL \("ATTACHMENT" \("FILENAME\*" "utf-8''na%C3%AFve.pdf"\)\)`)
}
