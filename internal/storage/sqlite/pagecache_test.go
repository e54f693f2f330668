package sqlite

import (
	"context"
	"fmt"
	"testing"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/roost-mail/roost/internal/mailstore"
)

// TestPageCacheBlock checks that the store's pages live in the page cache
// block (pagecache.go): installed at the first Open, and used by reads.
func TestPageCacheBlock(t *testing.T) {
	s, _ := openTest(t)
	if pageCacheErr != nil {
		t.Fatalf("page cache block not installed: %v", pageCacheErr)
	}
	ctx := context.Background()
	a := addAccount(t, s, "pc@example.test")
	mb := inbox(t, s, a.ID)
	for i := range 20 {
		raw := msg(fmt.Sprintf("page cache %d", i), fmt.Sprintf("pc%d@example.test", i), "body")
		if _, err := s.Append(ctx, a.ID, []mailstore.AppendRequest{{MailboxID: mb.ID, Raw: raw}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Search(ctx, a.ID, mb.ID, nil); err != nil {
		t.Fatal(err)
	}
	if used, hi := pageCacheUse(); used == 0 || hi == 0 {
		t.Fatalf("page cache block: %d slots in use, %d at most; want pages in it", used, hi)
	}
}

// pageCacheUse reports the block's slots in use now and at most so far.
func pageCacheUse() (used, highwater int) {
	tls := libc.NewTLS()
	defer tls.Close()
	statMu.Lock()
	defer statMu.Unlock()
	rc := sqlite3.Xsqlite3_status(tls, sqlite3.SQLITE_STATUS_PAGECACHE_USED,
		uintptr(unsafe.Pointer(&statOut[0])), uintptr(unsafe.Pointer(&statOut[1])), 0)
	if rc != sqlite3.SQLITE_OK {
		return 0, 0
	}
	return int(statOut[0]), int(statOut[1])
}
