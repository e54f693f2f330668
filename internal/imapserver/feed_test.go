package imapserver

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/roost-mail/roost/internal/mailstore"
)

// A session's own write moves its view forward without a feed read
// (selection.ownWrite); a change another session makes right after must
// still reach it, even though both wake-ups coalesce into one.
func TestOwnWriteThenOtherWrite(t *testing.T) {
	env, a, b := twoDevices(t, 3)
	b.ok("SELECT INBOX")
	for i := 0; i < 20; i++ {
		op := "+"
		if i%2 == 1 {
			op = "-"
		}
		a.ok(fmt.Sprintf(`STORE 1 %sFLAGS.SILENT (\Seen)`, op))
		b.ok(fmt.Sprintf(`STORE 2 %sFLAGS.SILENT (\Flagged)`, op))
		want := `^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\)\)$`
		if op == "-" {
			want = `^\* 2 FETCH \(UID 2 FLAGS \(\)\)$`
		}
		mustHave(t, a.ok("NOOP"), want)
		// A's own APPEND: EXISTS from the result, B's from the feed.
		lines := a.ok("APPEND INBOX {11+}\r\nSubject: x\r\n")
		mustHave(t, lines, fmt.Sprintf(`^\* %d EXISTS$`, 4+2*i))
		b.ok("APPEND INBOX {11+}\r\nSubject: y\r\n")
		mustHave(t, a.ok("NOOP"), fmt.Sprintf(`^\* %d EXISTS$`, 5+2*i))
	}
	// Nothing was lost or reported twice: A's view matches a fresh one.
	lines := a.ok("UID SEARCH ALL")
	fresh := env.login(t, alice)
	fresh.ok("SELECT INBOX")
	if got, want := lines[0], fresh.ok("UID SEARCH ALL")[0]; got != want {
		t.Fatalf("view %q, fresh %q", got, want)
	}
}

// Many sessions idle on one account share feed reads; changes in quick
// succession reach every one of them, in order, none lost.
func TestSharedFeedReads(t *testing.T) {
	env := newTestEnv(t, Config{})
	const user = "alice@example.test"
	env.deliver(t, user, testMessage(1))
	const n = 40
	idlers := make([]*rawClient, n)
	for i := range idlers {
		idlers[i] = env.login(t, user)
		idlers[i].ok("SELECT INBOX")
		idlers[i].send("i IDLE")
		idlers[i].expect(`^\+ `)
	}
	const deliveries = 5
	for j := 2; j <= deliveries+1; j++ {
		env.deliver(t, user, testMessage(j))
	}
	var wg sync.WaitGroup
	errs := make(chan string, n)
	for _, c := range idlers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Wake-ups coalesce: a session may see several EXISTS or one,
			// but the last must be the final count.
			for {
				l := c.line()
				if l == fmt.Sprintf("* %d EXISTS", deliveries+1) {
					return
				}
				var k int
				if _, err := fmt.Sscanf(l, "* %d EXISTS", &k); err != nil || k > deliveries+1 {
					errs <- l
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for l := range errs {
		t.Fatalf("unexpected line %q", l)
	}
	for _, c := range idlers {
		c.send("DONE")
		c.expect(`^i OK `)
	}
}

// QRESYNC SELECT reads what changed from the feed unless the feed holds
// more than the mailbox (a long absence): then it fetches the mailbox.
// Both give the same answer.
func TestQresyncSelectLongAbsence(t *testing.T) {
	env := newTestEnv(t, Config{})
	const user = "alice@example.test"
	for i := 1; i <= 3; i++ {
		env.deliver(t, user, testMessage(i))
	}
	a := env.login(t, user)
	a.ok("ENABLE QRESYNC")
	lines := a.ok("SELECT INBOX")
	validity := submatch(t, lines, `UIDVALIDITY (\d+)`)
	modseq := submatch(t, lines, `HIGHESTMODSEQ (\d+)`)
	a.ok(`STORE 2 +FLAGS (\Flagged)`)
	a.ok("CREATE Old")
	ctx := context.Background()
	acct := env.users[user]
	arch, err := env.store.GetMailbox(ctx, acct.ID, "Old")
	if err != nil {
		t.Fatal(err)
	}
	check := func() {
		t.Helper()
		b := env.login(t, user)
		b.ok("ENABLE QRESYNC")
		lines := b.ok("SELECT INBOX (QRESYNC (" + validity + " " + modseq + "))")
		mustHave(t, lines, `^\* 2 FETCH \(UID 2 FLAGS \(\\Flagged\) MODSEQ \(\d+\)\)$`)
		if hasLine(lines, `UID [13] `) {
			t.Fatalf("unchanged message reported: %q", lines)
		}
	}
	check()
	// More changes in the account than messages in INBOX.
	reqs := make([]mailstore.AppendRequest, changePage+1)
	for i := range reqs {
		reqs[i] = mailstore.AppendRequest{MailboxID: arch.ID, Raw: []byte(testMessage(100 + i))}
	}
	if _, err := env.store.Append(ctx, acct.ID, reqs); err != nil {
		t.Fatal(err)
	}
	check()
}

// A feed page ends before a group of changes too large to fit (one APPEND
// of more messages than a page): the session must read on, not take the
// short page for the end.
func TestFeedPageBeforeLargeGroup(t *testing.T) {
	env := newTestEnv(t, Config{})
	const user = "alice@example.test"
	for i := 1; i <= 3; i++ {
		env.deliver(t, user, testMessage(i))
	}
	a := env.login(t, user)
	a.ok("SELECT INBOX")
	b := env.login(t, user)
	b.ok("SELECT INBOX")
	b.ok(`STORE 1 +FLAGS (\Flagged)`)
	ctx := context.Background()
	acct := env.users[user]
	inbox, err := env.store.GetMailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	reqs := make([]mailstore.AppendRequest, changePage+1)
	for i := range reqs {
		reqs[i] = mailstore.AppendRequest{MailboxID: inbox.ID, Raw: []byte(testMessage(100 + i))}
	}
	if _, err := env.store.Append(ctx, acct.ID, reqs); err != nil {
		t.Fatal(err)
	}
	lines := a.ok("NOOP")
	mustHave(t, lines, `^\* 1 FETCH \(UID 1 FLAGS \(\\Flagged\)\)$`, fmt.Sprintf(`^\* %d EXISTS$`, 3+changePage+1))
}

// RFC 3501 section 6.3.1: SELECT names the first unseen message,
// wherever it is in a small or a large mailbox, and nothing when every
// message is seen.
func TestSelectFirstUnseen(t *testing.T) {
	env := newTestEnv(t, Config{})
	t.Run("large", func(t *testing.T) {
		testFirstUnseen(t, env, "alice@example.test", 1500, []string{"1490:1500", "700", "1"}, []int{1490, 700, 1})
	})
	t.Run("small", func(t *testing.T) {
		testFirstUnseen(t, env, "bob@example.test", 20, []string{"18:20", "7", "1"}, []int{18, 7, 1})
	})
}

func testFirstUnseen(t *testing.T, env *testEnv, user string, n int, sets []string, firsts []int) {
	ctx := context.Background()
	acct := env.users[user]
	inbox, err := env.store.GetMailbox(ctx, acct.ID, "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	reqs := make([]mailstore.AppendRequest, n)
	for i := range reqs {
		reqs[i] = mailstore.AppendRequest{MailboxID: inbox.ID, Raw: []byte(testMessage(i)), Flags: []string{mailstore.FlagSeen}}
	}
	if _, err := env.store.Append(ctx, acct.ID, reqs); err != nil {
		t.Fatal(err)
	}
	c := env.login(t, user)
	if lines := c.ok("EXAMINE INBOX"); hasLine(lines, "UNSEEN") {
		t.Fatalf("UNSEEN with every message seen: %q", lines)
	}
	// Unseen: the newest few, then one in the middle, then the head too.
	for i, set := range sets {
		c.ok("SELECT INBOX")
		c.ok(`STORE ` + set + ` -FLAGS.SILENT (\Seen)`)
		lines := c.ok("EXAMINE INBOX")
		mustHave(t, lines, fmt.Sprintf(`^\* OK \[UNSEEN %d\] `, firsts[i]))
	}
}
