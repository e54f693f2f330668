package mailfile

import (
	"slices"
	"testing"
)

// FuzzMbox checks that writing what was read and reading it again gives
// the same messages: the property `roost export` then `roost import`
// relies on.
func FuzzMbox(f *testing.F) {
	for _, s := range []string{
		"",
		"From alice@example.test Mon Jan  1 10:00:00 2024\nFrom: alice@example.test\nSubject: hi\n\nhello\n\nFrom bob@example.test Tue Jan  2 11:00:00 2024\nSubject: re\n\n>From the archive\nbye\n",
		"From a Mon Jan  1 10:00:00 2024\r\nSubject: x\r\n\r\nbody\r\n",
		"From a Mon Jan  1 10:00:00 +0200 2024\nx\nFrom inside\n\n>>From deep\n\n\n",
		"From  Sat, 2 Mar 2024 09:08:07 -0700\nno newline",
		"\n\nFrom MAILER-DAEMON Thu Jan  1 00:00:00 1970\n\nFrom b x\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		first, err := readAll(t, in)
		if err != nil {
			return
		}
		second, err := readAll(t, write(t, first))
		if err != nil {
			t.Fatalf("reading what was written: %v", err)
		}
		if !slices.Equal(raws(first), raws(second)) {
			t.Fatalf("messages changed:\n%q\n%q", raws(first), raws(second))
		}
		for i := range first {
			a, b := first[i], second[i]
			if a.Sender != b.Sender || (!a.Date.IsZero() && !a.Date.Equal(b.Date)) {
				t.Fatalf("message %d: separator %q %v became %q %v", i, a.Sender, a.Date, b.Sender, b.Date)
			}
		}
	})
}
