package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/mailstore"
)

// TestCheckpointerCopiesWAL: with SQLite's automatic checkpoints off on
// the writer, committed pages reach the database file only through the
// checkpointer goroutine. Without it the file would not grow until the
// store closed.
func TestCheckpointerCopiesWAL(t *testing.T) {
	ctx := context.Background()
	s, dir := openTest(t)
	a := addAccount(t, s, "ckpt@example.test")
	in := inbox(t, s, a.ID)
	db := filepath.Join(dir, DBFile)
	size := func() int64 {
		fi, err := os.Stat(db)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// Let the checkpointer settle what Open and the setup wrote.
	time.Sleep(3 * checkpointEvery)
	before := size()
	body := strings.Repeat("ballast line for the checkpoint test\r\n", 2000)
	for i := range 20 {
		if _, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: msg("ckpt", "ck@x"+string(rune('a'+i)), body)}}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for size() < before+20*int64(len(body)) {
		if time.Now().After(deadline) {
			t.Fatalf("database file %d bytes, was %d before 20 messages of %d bytes: the WAL was not checkpointed", size(), before, len(body))
		}
		time.Sleep(20 * time.Millisecond)
	}
}
