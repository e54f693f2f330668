package sqlite

import (
	"context"
	"fmt"
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

// TestWALStartsOver: under writes that never pause, with readers reading
// all the while, the log still starts over once it passes walRestart
// frames (a PASSIVE checkpoint alone never finds it idle, and the file
// grew by every byte written).
func TestWALStartsOver(t *testing.T) {
	ctx := context.Background()
	s, dir := openTest(t)
	s.ftsOff.Store(true)
	a := addAccount(t, s, "walrestart@example.test")
	in := inbox(t, s, a.ID)
	wal := filepath.Join(dir, DBFile+"-wal")
	body := strings.Repeat("a line that fills the log of the restart test\r\n", 400) // ~19 KB
	// 64 frames of 4 KiB. A commit writes its pages whole, so 8 MB of mail
	// made a 50 MB log before. Restarting, the log grows only by what is
	// written between two successful restarts (a checkpoint runs at most
	// every checkpointEvery, and a RESTART can miss its turn when readers
	// hold on past restartWait): 8-12 MB here, whatever the total.
	s.walRestart.Store(64)
	stop := make(chan struct{})
	readers := make(chan error, 2)
	for range 2 {
		go func() {
			for {
				select {
				case <-stop:
					readers <- nil
					return
				default:
				}
				if _, _, err := s.UIDs(ctx, a.ID, in.ID); err != nil {
					readers <- err
					return
				}
			}
		}()
	}
	var written int
	for i := 0; written < 24<<20; i++ {
		raw := msg("restart", fmt.Sprint("r", i, "@x"), body)
		if _, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: in.ID, Raw: raw}}); err != nil {
			t.Fatal(err)
		}
		written += len(raw)
	}
	close(stop)
	for range 2 {
		if err := <-readers; err != nil {
			t.Fatal(err)
		}
	}
	fi, err := os.Stat(wal)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("WAL %d bytes after %d written", fi.Size(), written)
	if fi.Size() > int64(written) { // without restarts: about 150 MB
		t.Fatalf("WAL is %d bytes after %d bytes written: it never started over", fi.Size(), written)
	}
}
