package delivery

import (
	"bytes"
	"net/mail"
	"strings"
	"testing"
	"time"
)

func TestHeaderEnd(t *testing.T) {
	cases := []struct {
		raw  string
		want int
	}{
		{"A: b\r\n\r\nbody", 6},
		{"A: b\n\nbody", 5},
		{"\r\nbody", 0},
		{"A: b\r\nC: d", 10},
		{"A: b\r\n folded\r\n\r\n", 15},
	}
	for _, c := range cases {
		if got := HeaderEnd([]byte(c.raw)); got != c.want {
			t.Errorf("HeaderEnd(%q) = %d, want %d", c.raw, got, c.want)
		}
	}
}

func TestCountReceivedAndHeaderValue(t *testing.T) {
	raw := []byte("Received: from a\r\n\tby b; date\r\nreceived: x\r\nSubject: hi\r\n  there\r\n\r\nReceived: in body\r\n")
	if n := CountReceived(raw); n != 2 {
		t.Fatalf("CountReceived = %d, want 2", n)
	}
	v, ok := HeaderValue(raw, "subject")
	if !ok || v != "hi there" {
		t.Fatalf("HeaderValue = %q, %v", v, ok)
	}
	if _, ok := HeaderValue(raw, "Message-ID"); ok {
		t.Fatal("found a missing field")
	}
}

func TestFromAddresses(t *testing.T) {
	got, ok := FromAddresses([]byte("From: \"A B\" <A@Example.TEST>, c@d.test\r\n\r\n"))
	if !ok || len(got) != 2 || got[0] != "a@example.test" || got[1] != "c@d.test" {
		t.Fatalf("FromAddresses = %v, %v", got, ok)
	}
	for _, raw := range []string{"Subject: x\r\n\r\n", "From: not an address\r\n\r\n", "From:\r\n\r\n"} {
		if _, ok := FromAddresses([]byte(raw)); ok {
			t.Errorf("FromAddresses(%q) ok", raw)
		}
	}
}

// A display name encoded in a charset net/mail cannot decode (Outlook's
// windows-1252, Japanese mailers' iso-2022-jp) must not hide the address:
// without this a user of such a mail program could submit nothing at all
// ("550 5.6.0 Message has no valid From: header").
func TestFromAddressesLegacyCharsetDisplayName(t *testing.T) {
	for _, from := range []string{
		"=?iso-2022-jp?B?GyRCJUYlOSVIGyhC?= <Alice@X.test>",
		"=?windows-1252?Q?Ren=E9?= <alice@x.test>",
		"=?x-unknown?Q?abc?= <alice@x.test>",
	} {
		got, ok := FromAddresses([]byte("From: " + from + "\r\nSubject: s\r\n\r\nbody"))
		if !ok || len(got) != 1 || got[0] != "alice@x.test" {
			t.Errorf("FromAddresses(From: %s) = %v, %v; want [alice@x.test]", from, got, ok)
		}
	}
}

// RFC 5322 section 3.6 allows exactly one From: field. A second one (in
// any case, anywhere in the header) is refused rather than ignored: mail
// programs differ in which one they show, so an unchecked second From:
// would let a submitter appear as someone else.
func TestFromAddressesExactlyOneFromField(t *testing.T) {
	for _, raw := range []string{
		"From: alice@x.test\r\nFrom: bob@x.test\r\n\r\nbody",
		"From: alice@x.test\r\nSubject: s\r\nfrom: alice@x.test\r\n\r\nbody",
		"From: alice@x.test\r\nSubject: s\r\nFROM:\r\n bob@x.test\r\n\r\nbody",
	} {
		if got, ok := FromAddresses([]byte(raw)); ok {
			t.Errorf("FromAddresses(%q) = %v, ok with two From: fields", raw, got)
		}
	}
	// A From: in the body is not a header field.
	if got, ok := FromAddresses([]byte("From: alice@x.test\r\n\r\nFrom: bob@x.test\r\n")); !ok || len(got) != 1 || got[0] != "alice@x.test" {
		t.Fatalf("From: in the body counted: %v, %v", got, ok)
	}
}

func TestReceivedHeader(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	h := ReceivedHeader(Trace{Helo: "client.test", RemoteIP: "192.0.2.1", Protocol: "ESMTPS", TLS: "TLS 1.3", ID: "abc"}, "mx.test", []string{"u@x.test"}, now)
	want := "Received: from client.test ([192.0.2.1])\r\n\tby mx.test (Roost) with ESMTPS id abc\r\n\t(TLS 1.3)\r\n\tfor <u@x.test>; Wed, 25 Nov 2026 10:00:00 +0000\r\n"
	if h != want {
		t.Fatalf("got\n%q\nwant\n%q", h, want)
	}
	// RFC 5321 section 4.1.3: an IPv6 address literal carries its tag.
	if h := ReceivedHeader(Trace{Helo: "c", RemoteIP: "2001:db8::1"}, "mx.test", nil, now); !strings.Contains(h, "from c ([IPv6:2001:db8::1])") {
		t.Errorf("IPv6 client: %q", h)
	}
	h2 := ReceivedHeader(Trace{Helo: "c"}, "mx.test", []string{"a@x.test", "b@x.test"}, now)
	if strings.Contains(h2, "for <") {
		t.Fatalf("for clause with two recipients: %q", h2)
	}
	// Hostile EHLO cannot add lines or fields.
	h3 := ReceivedHeader(Trace{Helo: "evil\r\nX-Injected: yes", RemoteIP: "1.2.3.4)"}, "mx.test", nil, now)
	if strings.Count(h3, "\r\n") != 2 || strings.Contains(h3, "\r\nX-Injected") {
		t.Fatalf("injection: %q", h3)
	}
}

func TestCompleteSubmission(t *testing.T) {
	now := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	raw := []byte("From: a@x.test\r\nSubject: s\r\n\r\nbody\r\n")
	out := CompleteSubmission(raw, "mx.test", now)
	m, err := mail.ReadMessage(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if m.Header.Get("Date") != "Wed, 25 Nov 2026 10:00:00 +0000" {
		t.Fatalf("Date = %q", m.Header.Get("Date"))
	}
	if id := m.Header.Get("Message-ID"); !strings.HasSuffix(id, "@mx.test>") || !strings.HasPrefix(id, "<") {
		t.Fatalf("Message-ID = %q", id)
	}
	if !bytes.HasSuffix(out, raw) {
		t.Fatal("original bytes changed")
	}
	full := []byte("Date: x\r\nMessage-ID: <a@b>\r\n\r\n")
	if got := CompleteSubmission(full, "mx.test", now); !bytes.Equal(got, full) {
		t.Fatalf("complete message changed: %q", got)
	}
}

func FuzzHeaders(f *testing.F) {
	f.Add([]byte("Received: a\r\nFrom: \"x\" <a@b.test>\r\n\r\nbody"), "helo.test", "127.0.0.1")
	f.Add([]byte("From: a@b\n\n"), "x\r\ny", "::1")
	f.Add([]byte("\r\n"), "", "")
	f.Add([]byte(" folded first\r\nA:b\r\n"), "(((", ")")
	f.Fuzz(func(t *testing.T, raw []byte, helo, ip string) {
		end := HeaderEnd(raw)
		if end < 0 || end > len(raw) {
			t.Fatalf("HeaderEnd out of range: %d", end)
		}
		n := CountReceived(raw)
		FromAddresses(raw)
		h := ReceivedHeader(Trace{Helo: helo, RemoteIP: ip, TLS: helo}, "mx.test", []string{helo}, time.Unix(0, 0))
		// The field is one header field: lines after the first are
		// folded, and it ends with exactly one CRLF.
		lines := strings.Split(strings.TrimSuffix(h, "\r\n"), "\r\n")
		for i, l := range lines {
			if strings.ContainsAny(l, "\r\n") || (i > 0 && !strings.HasPrefix(l, "\t")) {
				t.Fatalf("bad Received line %d: %q", i, l)
			}
		}
		stamped := append([]byte(h), raw...)
		if got := CountReceived(stamped); got != n+1 {
			t.Fatalf("CountReceived after stamp = %d, want %d", got, n+1)
		}
		out := CompleteSubmission(raw, helo, time.Unix(0, 0))
		if !bytes.HasSuffix(out, raw) {
			t.Fatal("CompleteSubmission changed the original")
		}
	})
}
