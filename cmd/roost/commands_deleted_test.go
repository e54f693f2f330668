package main

import (
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/roost-mail/roost/internal/app"
	"github.com/roost-mail/roost/internal/mailstore"
)

// A user deletes a message the IMAP way (\Deleted, then EXPUNGE) and asks
// the operator for it back. After `roost deleted restore` the user must see
// it as a live message: were it still flagged \Deleted, their client's next
// EXPUNGE or CLOSE would silently delete it again. The operator typing the
// ID twice must still get it back, once.
func TestDeletedRestoreOfIMAPDeletedMessage(t *testing.T) {
	c, _ := newCLI(t)
	ctx, cfg, st, acct := bobStore(t, c)
	inbox, _ := st.GetMailbox(ctx, acct.ID, "INBOX")
	raw := "From: a@example.test\r\nSubject: s\r\n\r\nhi\r\n"
	res, err := st.Append(ctx, acct.ID, []mailstore.AppendRequest{{MailboxID: inbox.ID, Raw: []byte(raw),
		Flags: []string{mailstore.FlagSeen, mailstore.FlagDeleted}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.ExpungeDeleted(ctx, acct.ID, inbox.ID, mailstore.UIDSetOf(res[0].UID)); err != nil {
		t.Fatal(err)
	}
	st.Close()

	m := regexp.MustCompile(`^(\d+)\t`).FindStringSubmatch(c.ok("", "deleted", "list", "bob@example.test"))
	if m == nil {
		t.Fatal("deleted list shows nothing")
	}
	out := c.ok("", "deleted", "restore", "bob@example.test", m[1], m[1])
	if !strings.HasPrefix(out, "restored "+m[1]+" to INBOX UID ") || strings.Count(out, "\n") != 1 {
		t.Fatalf("restore output %q; want one line", out)
	}

	st, err = app.OpenStore(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var flags [][]string
	st.Fetch(ctx, acct.ID, inbox.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}}, mailstore.FetchIDs, 0, func(m *mailstore.Message) error {
		flags = append(flags, slices.Clone(m.Flags))
		return nil
	})
	if len(flags) != 1 || !slices.Equal(flags[0], []string{mailstore.FlagSeen}) {
		t.Errorf("INBOX after the restore holds messages with flags %v; want one with [\\Seen]", flags)
	}
	gone, _, err := st.ExpungeDeleted(ctx, acct.ID, inbox.ID, mailstore.UIDSet{{Lo: 1, Hi: mailstore.MaxUID}})
	if err != nil || len(gone) != 0 {
		t.Errorf("the next EXPUNGE removed the restored message again: %v, %v", gone, err)
	}
}
