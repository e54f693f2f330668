package imapserver

import (
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// srng is a range of numbers without "*".
func srng(lo, hi mailstore.UID) seqRange { return seqRange{lo: lo, hi: hi} }

func TestParseCommands(t *testing.T) {
	tests := []struct {
		in   string
		name string
		uid  bool
		args any
	}{
		{`a LOGIN "al\"ice" {3}` + "\r\np w", "LOGIN", false, loginArgs{`al"ice`, "p w"}},
		{`a login alice pass`, "LOGIN", false, loginArgs{"alice", "pass"}},
		{`a AUTHENTICATE plain =`, "AUTHENTICATE", false, authArgs{mech: "PLAIN", hasIR: true}},
		{`a ENABLE QRESYNC utf8=accept`, "ENABLE", false, []string{"QRESYNC", "UTF8=ACCEPT"}},
		{`a SELECT INBOX (CONDSTORE)`, "SELECT", false, selectArgs{mailbox: "INBOX", condstore: true}},
		{`a SELECT x (QRESYNC (67890007 90060115194045000 41:211,214:541 (1:3 4:6)))`, "SELECT", false, selectArgs{mailbox: "x", qresync: &qresyncArgs{
			uidValidity: 67890007, modSeq: 90060115194045000,
			knownUIDs: numSet{ranges: []seqRange{srng(41, 211), srng(214, 541)}}, hasKnown: true,
			seqMatch: numSet{ranges: []seqRange{srng(1, 3)}}, uidMatch: numSet{ranges: []seqRange{srng(4, 6)}}, hasMatch: true}}},
		{`a CREATE Sent (USE (\Sent))`, "CREATE", false, createArgs{"Sent", `\Sent`}},
		{`a RENAME a b`, "RENAME", false, renameArgs{"a", "b"}},
		{`a LIST (SUBSCRIBED) "" ("a*" %) RETURN (CHILDREN STATUS (MESSAGES))`, "LIST", false, listArgs{
			selOpts: []string{"SUBSCRIBED"}, patterns: []string{"a*", "%"}, retOpts: []string{"CHILDREN", "STATUS"}, statusArgs: []string{"MESSAGES"}, extended: true}},
		{`a LSUB "" *`, "LSUB", false, listArgs{lsub: true, patterns: []string{"*"}}},
		{`a STATUS INBOX (MESSAGES size)`, "STATUS", false, statusArgs{"INBOX", []string{"MESSAGES", "SIZE"}}},
		{`a UID STORE 1:*,5 (UNCHANGEDSINCE 7) -FLAGS.SILENT \Seen $Junk`, "STORE", true, storeArgs{
			set: numSet{ranges: []seqRange{{lo: 1, hiStar: true}, srng(5, 5)}}, unchangedSince: 7, hasUnchanged: true,
			mode: mailstore.FlagsRemove, silent: true, flags: []string{`\Seen`, "$Junk"}}},
		{`a COPY $ Trash`, "COPY", false, copyArgs{numSet{dollar: true}, "Trash"}},
		{`a UID EXPUNGE 3:2`, "EXPUNGE", true, uidExpungeArgs{numSet{ranges: []seqRange{srng(3, 2)}}}},
		{`a ID ("name" "x" "version" NIL)`, "ID", false, nil},
		{`a ID NIL`, "ID", false, nil},
	}
	for _, tc := range tests {
		c, err := parseCommand([]byte(tc.in))
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if c.name != tc.name || c.uid != tc.uid || !reflect.DeepEqual(c.args, tc.args) {
			t.Errorf("%q:\n got %s %v %#v\nwant %s %v %#v", tc.in, c.name, c.uid, c.args, tc.name, tc.uid, tc.args)
		}
	}
}

func TestParseFetchItems(t *testing.T) {
	c, err := parseCommand([]byte(`a UID FETCH 1:3 (FLAGS BODY.PEEK[1.2.HEADER.FIELDS.NOT (To Cc)]<10.20> BINARY[2] BINARY.SIZE[1] BODY[3.MIME] BODY PREVIEW (LAZY)) (CHANGEDSINCE 5 VANISHED)`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.args.(fetchArgs)
	if !a.vanished || a.changedSince != 5 || len(a.items) != 7 {
		t.Fatalf("%+v", a)
	}
	it := a.items[1]
	if it.name != "BODY[]" || !it.peek || !it.partial || it.offset != 10 || it.count != 20 ||
		it.section.String() != "1.2.HEADER.FIELDS.NOT (TO CC)" {
		t.Fatalf("%+v %s", it, it.section)
	}
	if a.items[2].name != "BINARY[]" || a.items[2].section.String() != "2" || a.items[3].name != "BINARY.SIZE" ||
		a.items[4].section.String() != "3.MIME" || a.items[5].name != "BODY" || a.items[6].name != "PREVIEW" {
		t.Fatalf("%+v", a.items)
	}
	c, err = parseCommand([]byte(`a FETCH * FULL`))
	if err != nil || len(c.args.(fetchArgs).items) != 5 {
		t.Fatalf("FULL: %v %+v", err, c)
	}
}

func TestParseSearch(t *testing.T) {
	c, err := parseCommand([]byte(`a SEARCH RETURN (MIN COUNT) CHARSET UTF-8 OR (FROM "bob" SINCE 1-Feb-2024) NOT 2:4 UID 5:* HEADER X-Y z LARGER 10 MODSEQ "/flags/\\draft" all 7`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.args.(searchArgs)
	if !a.hasReturn || !reflect.DeepEqual(a.ret, []string{"MIN", "COUNT"}) || a.charset != "UTF-8" {
		t.Fatalf("%+v", a)
	}
	k := a.key
	// OR takes the parenthesised group and NOT 2:4.
	if k.Op != mailstore.SearchAnd || len(k.Children) != 5 {
		t.Fatalf("%+v", k)
	}
	or := k.Children[0]
	since := or.Children[0].Children[1]
	if or.Op != mailstore.SearchOr || since.Op != mailstore.SearchSince || !since.Date.Equal(time.Date(2024, 2, 1, 0, 0, 0, 0, time.Local)) {
		t.Fatalf("%+v", or)
	}
	if n := or.Children[1]; n.Op != mailstore.SearchNot || n.Children[0].Op != searchSeqSet {
		t.Fatalf("%+v", n)
	}
	if u := k.Children[1]; u.Op != searchUIDSet || !reflect.DeepEqual(a.sets[u].ranges, []seqRange{{lo: 5, hiStar: true}}) {
		t.Fatalf("%+v %+v", u, a.sets[u])
	}
	if h := k.Children[2]; h.Name != "X-Y" || h.Value != "z" {
		t.Fatalf("%+v", h)
	}
	if m := k.Children[4]; m.Op != mailstore.SearchModSeq || m.ModSeq != 7 {
		t.Fatalf("%+v", m)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"", "a", "a ", "+ NOOP", "a NOOP extra", `a LOGIN "x`, "a LOGIN {5}\r\nab", "a FETCH 1:x FLAGS",
		"a FETCH 1 BODY[HEADER.FIELDS ()]", "a FETCH 1 (FLAGS", "a STORE 1 FLAGS", "a SEARCH OR ALL",
		"a SEARCH SINCE 31-Foo-2020", "a APPEND INBOX", `a APPEND INBOX "bad date" {1}` + "\r\nx",
		"a FETCH 4294967296 FLAGS", "a SELECT INBOX (QRESYNC (0 1))", "a UID NOOP", "a LOGIN {1}\r\n\x00 x",
		"a SEARCH " + string(make([]byte, 0)) + "((((((((((((((((((((((((((((((((((((((((((((((((((((((ALL))))))))))))))))))))))))))))))))))))))))))))))))))))))",
	} {
		_, err := parseCommand([]byte(in))
		var pe *parseError
		if !errors.As(err, &pe) {
			t.Errorf("%q: want a parse error, got %v", in, err)
		}
	}
}

func TestMUTF7(t *testing.T) {
	for _, tc := range []struct{ utf8, mutf7 string }{
		{"INBOX", "INBOX"}, {"A&B", "A&-B"}, {"Été/Café", "&AMk-t&AOk-/Caf&AOk-"},
		{"日本語", "&ZeVnLIqe-"}, {"~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"}, {"😀", "&2D3eAA-"},
	} {
		if got := encodeMUTF7(tc.utf8); got != tc.mutf7 {
			t.Errorf("encode %q = %q, want %q", tc.utf8, got, tc.mutf7)
		}
		if got, err := decodeMUTF7(tc.mutf7); err != nil || got != tc.utf8 {
			t.Errorf("decode %q = %q, %v", tc.mutf7, got, err)
		}
	}
	for _, bad := range []string{"&", "&AGE-", "&Jjo", "&2D3-"} {
		if _, err := decodeMUTF7(bad); err == nil {
			t.Errorf("decode %q: no error", bad)
		}
	}
}

func TestLiteralSuffix(t *testing.T) {
	for _, tc := range []struct {
		in       string
		n        int64
		sync, ok bool
	}{
		{"a LOGIN {5}", 5, true, true}, {"a APPEND x {12+}", 12, false, true}, {"a APPEND x ~{3-}", 3, false, true},
		{"a NOOP", 0, false, false}, {"a {}", 0, false, false}, {"a {x}", 0, false, false},
		{"a {99999999999999999999}", 0, false, false}, {"a {+}", 0, false, false},
	} {
		n, sync, ok := literalSuffix([]byte(tc.in))
		if n != tc.n || sync != tc.sync || ok != tc.ok {
			t.Errorf("%q: %d %v %v", tc.in, n, sync, ok)
		}
	}
}

// FuzzParseCommand: the parser never panics, and what it accepts has a tag
// and a known command name.
func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{
		"a1 LOGIN alice@example.test {11}\r\nsecret pass",
		`a2 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==`,
		"a3 SELECT INBOX (QRESYNC (1 2 1:5 (1:2 3:4)))",
		`a4 LIST (SUBSCRIBED RECURSIVEMATCH) "" ("*" "%/x") RETURN (STATUS (MESSAGES UNSEEN) CHILDREN)`,
		`a5 APPEND INBOX (\Seen) " 1-Jan-2024 10:00:00 +0000" {5+}` + "\r\nabcde ~{2}\r\n\x00\x01",
		`a6 UID FETCH 1:*,7 (UID FLAGS BODY.PEEK[1.HEADER.FIELDS (FROM TO)]<0.100> BINARY[2] MODSEQ) (CHANGEDSINCE 9 VANISHED)`,
		`a7 UID SEARCH RETURN (SAVE MIN) CHARSET UTF-8 OR UNSEEN (SINCE 1-Jan-2020 NOT FROM "x") $ MODSEQ 5 OLDER 60`,
		`a8 STORE 1:3 (UNCHANGEDSINCE 4) +FLAGS.SILENT (\Deleted $label)`,
		`a9 MOVE 1:2 "&AMk-t&AOk-"`, `b1 ENABLE IMAP4rev2 CONDSTORE`, `b2 STATUS x (SIZE HIGHESTMODSEQ)`,
		`b3 CREATE Trash (USE (\Trash))`, `b4 ID ("name" "t")`, `b5 UID EXPUNGE 1:5`, "b6 IDLE",
		`b7 UID FETCH 4294967295,*:3,2:* FLAGS`, "b8 STORE 1 +FLAGS (caf\xc3\xa9 \\Seen)",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCommand(b)
		if err != nil {
			var pe *parseError
			if !errors.As(err, &pe) {
				t.Fatalf("non-parse error %T %v", err, err)
			}
			return
		}
		if c.tag == "" {
			t.Fatal("accepted without a tag")
		}
		if _, ok := handlers[c.name]; !ok && c.name != "ID" {
			t.Fatalf("accepted unknown command %q", c.name)
		}
	})
}

// FuzzMUTF7: decoding never panics; what decodes re-encodes to itself.
func FuzzMUTF7(f *testing.F) {
	for _, s := range []string{"INBOX", "&AMk-t&AOk-", "A&-B", "&ZeVnLIqe-", "&2D3eAA-", "&"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := decodeMUTF7(s)
		if err != nil {
			return
		}
		if e := encodeMUTF7(d); e != s {
			d2, err := decodeMUTF7(e)
			if err != nil || d2 != d {
				t.Fatalf("%q -> %q -> %q -> %q %v", s, d, e, d2, err)
			}
		}
	})
}
