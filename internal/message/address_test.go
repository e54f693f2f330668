package message

import (
	"reflect"
	"testing"
)

func TestParseAddressList(t *testing.T) {
	g := func(name string) Address { return Address{Mailbox: name} }
	end := Address{}
	tests := []struct {
		in   string
		want []Address
	}{
		{"", nil},
		{"user@example.com", []Address{{Mailbox: "user", Host: "example.com"}}},
		{"Joe <joe@x.test>", []Address{{Name: "Joe", Mailbox: "joe", Host: "x.test"}}},
		// RFC 5322 section 3.4: quoted display name with quoted-pairs.
		{`"Giant; \"Big\" Box" <box@x.test>`, []Address{{Name: `Giant; "Big" Box`, Mailbox: "box", Host: "x.test"}}},
		// Obsolete phrase with a dot (RFC 5322 section 4.1).
		{"Joe Q. Public <jqp@x.test>", []Address{{Name: "Joe Q. Public", Mailbox: "jqp", Host: "x.test"}}},
		// RFC 9051 section 9: addr-mailbox is the local part without quoting.
		{`"john doe"@x.test`, []Address{{Mailbox: "john doe", Host: "x.test"}}},
		{`<"a\"b"@x.test>`, []Address{{Mailbox: `a"b`, Host: "x.test"}}},
		// Encoded words stay encoded (RFC 9051 section 7.5.2 wants raw strings).
		{"=?utf-8?q?J=C3=B6rg?= <j@x.test>", []Address{{Name: "=?utf-8?q?J=C3=B6rg?=", Mailbox: "j", Host: "x.test"}}},
		// Groups: start marker, members, end marker (RFC 9051 section 7.5.2).
		{"undisclosed-recipients:;", []Address{g("undisclosed-recipients"), end}},
		{"A Team: a@x.test, B <b@y.test>; c@z.test", []Address{
			g("A Team"), {Mailbox: "a", Host: "x.test"}, {Name: "B", Mailbox: "b", Host: "y.test"}, end,
			{Mailbox: "c", Host: "z.test"}}},
		// Unterminated group still gets its end marker.
		{"G: a@x.test", []Address{g("G"), {Mailbox: "a", Host: "x.test"}, end}},
		// A nameless group reports its members only.
		{": a@x.test;", []Address{{Mailbox: "a", Host: "x.test"}}},
		// Route-addr (RFC 5322 section 4.4 obs-route) -> addr-adl.
		{"<@r1.test,@r2.test:u@h.test>", []Address{{ADL: "@r1.test,@r2.test", Mailbox: "u", Host: "h.test"}}},
		// Missing host / mailbox placeholders, never group markers.
		{"localonly", []Address{{Mailbox: "localonly", Host: missingHost}}},
		{"Name <nohost>", []Address{{Name: "Name", Mailbox: "nohost", Host: missingHost}}},
		{"<@host.test>", []Address{{Mailbox: missingMailbox, Host: "host.test"}}},
		{"<>", []Address{{Mailbox: missingMailbox, Host: missingHost}}},
		// Comments: dropped, a trailing one names an unnamed mailbox.
		{"old@style.test (Old Style)", []Address{{Name: "Old Style", Mailbox: "old", Host: "style.test"}}},
		{"Pete(A nice \\) chap) <pete(his account)@silly.test(his host)>", []Address{{Name: "Pete", Mailbox: "pete", Host: "silly.test"}}},
		// Domain literal.
		{"u@[192.0.2.1]", []Address{{Mailbox: "u", Host: "[192.0.2.1]"}}},
		// Empty list elements (RFC 5322 section 4.4 obs-addr-list) and ';' separators.
		{", , a@x.test,,b@y.test;c@z.test", []Address{
			{Mailbox: "a", Host: "x.test"}, {Mailbox: "b", Host: "y.test"}, {Mailbox: "c", Host: "z.test"}}},
		// UTF-8 (RFC 6532) in names and local parts.
		{"Zoë <zoë@exämple.test>", []Address{{Name: "Zoë", Mailbox: "zoë", Host: "exämple.test"}}},
		// Garbage does not stop the next address from being read.
		{"<<>>@@, ok@x.test", []Address{{Mailbox: missingMailbox, Host: missingHost}, {Mailbox: "ok", Host: "x.test"}}},
		// Unterminated quote and angle bracket.
		{`"unterminated <a@b`, []Address{{Mailbox: "unterminated <a@b", Host: missingHost}}},
		{"Name <a@b.test", []Address{{Name: "Name", Mailbox: "a", Host: "b.test"}}},
	}
	for _, tt := range tests {
		got := parseAddressList(tt.in)
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseAddressList(%q)\n got  %+v\n want %+v", tt.in, got, tt.want)
		}
	}
}

func TestEnvelopeDefaults(t *testing.T) {
	from := []Address{{Name: "F", Mailbox: "f", Host: "x.test"}}
	tests := []struct {
		name, hdr      string
		sender, replTo []Address
	}{
		// RFC 9051 section 7.5.2: absent or empty Sender/Reply-To take From.
		{"absent", "From: F <f@x.test>\r\n\r\n", from, from},
		{"empty", "From: F <f@x.test>\r\nSender:\r\nReply-To:  \r\n\r\n", from, from},
		{"present", "From: F <f@x.test>\r\nSender: s@y.test\r\nReply-To: r@z.test\r\n\r\n",
			[]Address{{Mailbox: "s", Host: "y.test"}}, []Address{{Mailbox: "r", Host: "z.test"}}},
	}
	for _, tt := range tests {
		env := Parse([]byte(tt.hdr)).Envelope
		if !reflect.DeepEqual(env.From, from) || !reflect.DeepEqual(env.Sender, tt.sender) || !reflect.DeepEqual(env.ReplyTo, tt.replTo) {
			t.Errorf("%s: from %+v sender %+v reply-to %+v", tt.name, env.From, env.Sender, env.ReplyTo)
		}
	}
	// No From at all: nothing to default to.
	env := Parse([]byte("Subject: x\r\n\r\n")).Envelope
	if env.From != nil || env.Sender != nil || env.ReplyTo != nil {
		t.Errorf("no From: got %+v", env)
	}
}
