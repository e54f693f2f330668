package smtpserver

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

// python3 finds Python or skips (fails when CI=true: the interop test must
// run there).
func python3(t *testing.T) string {
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("python3 is required for the smtplib interop test (CI=true)")
		}
		t.Skip("python3 not installed: skipping the smtplib interop test")
	}
	return p
}

const pyScript = `
import smtplib, sys
host, mx, sub, pw = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
msg = "From: alice@x.test\r\nTo: bob@x.test\r\nSubject: py\r\nMessage-ID: <py@x.test>\r\n\r\nfrom python\r\n"
with smtplib.SMTP(host, mx, local_hostname="py.test", timeout=10) as s:
    s.ehlo("py.test")
    assert s.has_extn("chunking") and s.has_extn("smtputf8") and not s.has_extn("dsn"), s.esmtp_features
    try:
        s.sendmail("x@remote.test", ["nobody@x.test"], msg)
        sys.exit("unknown recipient accepted")
    except smtplib.SMTPRecipientsRefused as e:
        assert e.recipients["nobody@x.test"][0] == 550, e.recipients
    refused = s.sendmail("x@remote.test", ["bob@x.test"], msg)
    assert refused == {}, refused
with smtplib.SMTP(host, sub, local_hostname="py.test", timeout=10) as s:
    try:
        s.sendmail("alice@x.test", ["bob@x.test"], msg)
        sys.exit("unauthenticated submission accepted")
    except smtplib.SMTPSenderRefused as e:
        assert e.smtp_code == 530, e
    s.login("alice@x.test", pw)
    s.sendmail("alice@x.test", ["bob@x.test"], msg.replace("<py@", "<py2@"))
    # RFC 3461 parameters: a "delivered" report comes back to Alice.
    assert s.has_extn("dsn"), s.esmtp_features
    refused = s.sendmail("alice@x.test", ["bob@x.test"], msg.replace("<py@", "<pydsn@"),
        mail_options=["RET=HDRS", "ENVID=py+2Benv"], rcpt_options=["NOTIFY=SUCCESS", "ORCPT=rfc822;bob@x.test"])
    assert refused == {}, refused
print("ok")
`

func TestPythonSmtplib(t *testing.T) {
	py := python3(t)
	e := newEnv(t)
	_, mx := e.start(t, nil, Config{}, false)
	_, sub := e.start(t, nil, Config{Submission: true, SaveSent: true}, false)
	script := filepath.Join(t.TempDir(), "t.py")
	if err := os.WriteFile(script, []byte(pyScript), 0o600); err != nil {
		t.Fatal(err)
	}
	_, mxPort, _ := net.SplitHostPort(mx)
	_, subPort, _ := net.SplitHostPort(sub)
	out, err := exec.Command(py, script, "127.0.0.1", mxPort, subPort, testPassword).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ok" {
		t.Fatalf("python: %v\n%s", err, out)
	}
	if n := len(e.mailbox(t, e.bob, "")); n != 3 {
		t.Fatalf("bob has %d messages, want 3", n)
	}
	if es, err := e.store.ListQueue(context.Background()); err != nil || len(es) != 0 {
		t.Fatalf("queue %+v, %v; want nothing", es, err)
	}
	reports := e.mailbox(t, e.alice, "")
	if len(reports) != 1 || !strings.Contains(string(reports[0]), "Original-Envelope-Id: py+env") || !strings.Contains(string(reports[0]), "Action: delivered") {
		t.Fatalf("alice's reports: %q", reports)
	}
	if n := len(e.mailbox(t, e.alice, mailstore.SpecialSent)); n != 2 {
		t.Fatalf("alice's Sent has %d, want 2 (both submissions)", n)
	}
}
