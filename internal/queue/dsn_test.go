package queue

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/mail"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/delivery"
)

// parsedDSN is what a reader of a DSN gets out of it.
type parsedDSN struct {
	header     mail.Header
	text       string
	perMessage textproto.MIMEHeader
	perRcpt    []textproto.MIMEHeader
	headers    string
	returned   string // the third part's type
	full       string // the returned message when it is message/rfc822
}

// parseDSN parses a multipart/report DSN strictly; tests use it for bounces
// found in INBOXes too.
func parseDSN(t testing.TB, raw []byte) parsedDSN {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("DSN does not parse: %v\n%s", err, raw)
	}
	mt, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/report" || params["report-type"] != "delivery-status" {
		t.Fatalf("Content-Type %q: %v", m.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(m.Body, params["boundary"])
	var out parsedDSN
	out.header = m.Header
	var types []string
	for {
		p, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("multipart: %v", err)
		}
		body, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("part: %v", err)
		}
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		types = append(types, ct)
		switch ct {
		case "text/plain":
			out.text = string(body)
		case "message/delivery-status":
			tr := textproto.NewReader(bufioReader(body))
			h, err := tr.ReadMIMEHeader()
			if err != nil && err != io.EOF {
				t.Fatalf("per-message fields: %v", err)
			}
			out.perMessage = h
			for {
				h, err := tr.ReadMIMEHeader()
				if len(h) > 0 {
					out.perRcpt = append(out.perRcpt, h)
				}
				if err != nil {
					break
				}
			}
		case "text/rfc822-headers":
			out.headers = string(body)
		case "message/rfc822":
			out.full = string(body)
			out.headers = string(body[:delivery.HeaderEnd(body)])
		}
	}
	if len(types) == 3 {
		out.returned = types[2]
	}
	if j := strings.Join(types, ","); j != "text/plain,message/delivery-status,text/rfc822-headers" && j != "text/plain,message/delivery-status,message/rfc822" {
		t.Fatalf("parts %v", types)
	}
	return out
}

func TestBuildDSN(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	orig := []byte("From: a@x.test\r\nSubject: hello\r\n\r\nsecret body\r\n")
	raw := BuildDSN(DSN{
		ReportingMTA: "mx.x.test", To: "a@x.test", Arrival: now.Add(-time.Hour), Date: now, Original: orig,
		Recipients: []DSNRecipient{
			{Address: "b@y.test", Status: "5.1.1", RemoteMTA: "mx.y.test", Diagnostic: "550 5.1.1 no such user", SMTPDiag: true},
			{Address: "c@y.test", Status: "bogus", Diagnostic: "line\r\nInjected: x"},
		},
	})
	d := parseDSN(t, raw)
	if d.header.Get("Auto-Submitted") != "auto-replied" || d.header.Get("To") != "<a@x.test>" {
		t.Fatalf("header %v", d.header)
	}
	if d.perMessage.Get("Reporting-MTA") != "dns; mx.x.test" {
		t.Fatalf("per-message %v", d.perMessage)
	}
	if len(d.perRcpt) != 2 {
		t.Fatalf("per-recipient blocks: %d", len(d.perRcpt))
	}
	r := d.perRcpt[0]
	if r.Get("Final-Recipient") != "rfc822; b@y.test" || r.Get("Action") != "failed" || r.Get("Status") != "5.1.1" ||
		r.Get("Diagnostic-Code") != "smtp; 550 5.1.1 no such user" || r.Get("Remote-MTA") != "dns; mx.y.test" {
		t.Fatalf("recipient 1: %v", r)
	}
	if r := d.perRcpt[1]; r.Get("Status") != "5.0.0" || r.Get("Injected") != "" {
		t.Fatalf("recipient 2: %v", r)
	}
	if !strings.Contains(d.headers, "Subject: hello") || strings.Contains(d.headers, "secret body") {
		t.Fatalf("rfc822-headers part: %q", d.headers)
	}

	delayed := parseDSN(t, BuildDSN(DSN{ReportingMTA: "mx", To: "a@x.test", Date: now, Delayed: true, RetryUntil: now.Add(time.Hour), Original: orig,
		Recipients: []DSNRecipient{{Address: "b@y.test", Action: "delayed", Status: "4.4.1", Diagnostic: "connection refused"}}}))
	if r := delayed.perRcpt[0]; r.Get("Action") != "delayed" || r.Get("Will-Retry-Until") == "" || r.Get("Status") != "4.4.1" {
		t.Fatalf("delayed: %v", r)
	}
}

func FuzzBuildDSN(f *testing.F) {
	f.Add("mx.test", "a@x.test", "b@y.test", "5.1.1", "550 5.1.1 unknown\r\nX: y", []byte("Subject: s\r\n\r\nbody"), false)
	f.Add("", "", "ü@y.test", "", "", []byte("no header end"), true)
	f.Add("h", "a", "--b", "4.4.1", "--=_roost_", []byte("X: --=_roost_\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, host, to, rcpt, status, diag string, orig []byte, delayed bool) {
		// Odd-length originals go back whole (RET=FULL); ENVID and ORCPT
		// take outside values too.
		raw := BuildDSN(DSN{ReportingMTA: host, To: to, Date: time.Unix(0, 0), Delayed: delayed, Original: orig, EnvID: diag, Full: len(orig)%2 == 1,
			Recipients: []DSNRecipient{{Address: rcpt, ORcpt: "rfc822;" + diag, Status: status, Diagnostic: diag, SMTPDiag: true}, {Address: rcpt, ORcpt: to}}})
		d := parseDSN(t, raw)
		if len(d.perRcpt) != 2 {
			t.Fatalf("per-recipient blocks: %d\n%s", len(d.perRcpt), raw)
		}
		for _, r := range d.perRcpt {
			if r.Get("Action") == "" || r.Get("Status") == "" || r.Get("Final-Recipient") == "" {
				t.Fatalf("incomplete recipient block %v", r)
			}
		}
	})
}

func TestBackoff(t *testing.T) {
	q := New(nil, Config{RetryBase: 5 * time.Minute, RetryMax: 4 * time.Hour}, nil)
	want := []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute, 40 * time.Minute, 80 * time.Minute, 160 * time.Minute, 4 * time.Hour, 4 * time.Hour}
	for i, w := range want {
		if got := q.backoff(i + 1); got != w {
			t.Errorf("backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
}

func TestReplyStatus(t *testing.T) {
	cases := map[string]string{"5.1.1 no": "5.1.1", "hello": "5.0.0", "5.1 x": "5.0.0", "4.7.0 y": "5.0.0", "5.7.x y": "5.0.0", "5.+1.1 x": "5.0.0"}
	for msg, want := range cases {
		if got := (smtpReply{code: 550, msg: msg}).status(); got != want {
			t.Errorf("status(%q) = %q, want %q", msg, got, want)
		}
	}
}

func bufioReader(b []byte) *bufio.Reader { return bufio.NewReader(bytes.NewReader(b)) }

func FuzzRemoteReply(f *testing.F) {
	f.Add("mx.test ESMTP\nPIPELINING\nSIZE 1000\nSTARTTLS\n8BITMIME", "5.1.1 user unknown")
	f.Add("", "4.7.0\x00\xff\r\nInjected: x")
	f.Add("x\n \n", "2.0.0 ok")
	f.Fuzz(func(t *testing.T, ehlo, text string) {
		ext := parseExtensions(strings.Split(ehlo, "\n"))
		for k := range ext {
			if k == "" || k != strings.ToUpper(k) {
				t.Fatalf("bad keyword %q", k)
			}
		}
		c := cleanReply(text)
		if strings.ContainsAny(c, "\r\n\x00") || len(c) > 500 {
			t.Fatalf("cleanReply: %q", c)
		}
		for _, code := range []int{250, 451, 550} {
			st := smtpReply{code: code, msg: c}.status()
			if validStatus(st, "failed") != st && code != 250 {
				t.Fatalf("status %q from %q", st, c)
			}
			if st[0] != byte('0'+code/100) && !strings.HasPrefix(c, st) {
				t.Fatalf("status %q for code %d", st, code)
			}
		}
	})
}
