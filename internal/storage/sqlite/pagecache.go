package sqlite

import (
	"fmt"
	"sync"
	"unsafe"

	"modernc.org/libc"
	"modernc.org/libc/sys/types"
	sqlite3 "modernc.org/sqlite/lib"
)

// Page cache memory. A reader connection's page cache is emptied whenever
// it starts a read after anyone committed (SQLite cannot tell which of its
// pages changed), and the pages it then reads are allocated afresh. By
// default each page is a malloc of its own from the driver's allocator,
// which hands memory past a few MiB per size class back to the kernel
// (madvise DONTNEED) when it is freed: under load every page read after a
// commit then page-faulted on fresh memory. Measured with 50 IMAP clients
// this took 53,000 page faults in 5 s and halved the speed of SEARCH and
// SELECT whenever the process's allocations happened to cross that limit
// (a change to the full-text index's format was enough).
//
// SQLITE_CONFIG_PAGECACHE gives SQLite one block of slots for page
// memory instead, allocated once for the process and never returned:
// pages go back to its free list, not to the allocator. Caches wanting
// more than the block holds fall back to malloc as before.

// pageCacheSlots is the number of page slots in the block: 8,192 pages of
// 4 KiB, 32 MiB plus headers, about what the writer's and the readers'
// caches use together under load.
const pageCacheSlots = 8192

// pageSize is the store's database page size (SQLite's default).
const pageSize = 4096

// configurePageCache installs the block. It must run before the process
// opens its first SQLite connection; afterwards SQLite refuses it
// (SQLITE_MISUSE) and the error says so.
func configurePageCache() error {
	tls := libc.NewTLS()
	defer tls.Close()
	va := libc.Xmalloc(tls, types.Size_t(3*8))
	if va == 0 {
		return fmt.Errorf("page cache: out of memory")
	}
	defer libc.Xfree(tls, va)
	// The bytes SQLite keeps beside each page (its page header and the
	// b-tree's extra), which every slot must hold too. SQLite writes the
	// answer through a pointer, so it goes to memory that never moves (a
	// package variable), not to this goroutine's stack.
	statMu.Lock()
	defer statMu.Unlock()
	if rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PCACHE_HDRSZ, libc.VaList(va, uintptr(unsafe.Pointer(&statOut[0])))); rc != sqlite3.SQLITE_OK {
		return fmt.Errorf("page cache: header size: sqlite error %d", rc)
	}
	slot := (pageSize + int(statOut[0]) + 7) &^ 7
	// Never freed: SQLite uses the block until the process exits.
	buf := libc.Xmalloc(tls, types.Size_t(slot*pageCacheSlots))
	if buf == 0 {
		return fmt.Errorf("page cache: out of memory for %d slots", pageCacheSlots)
	}
	if rc := sqlite3.Xsqlite3_config(tls, sqlite3.SQLITE_CONFIG_PAGECACHE, libc.VaList(va, buf, int32(slot), int32(pageCacheSlots))); rc != sqlite3.SQLITE_OK {
		libc.Xfree(tls, buf)
		return fmt.Errorf("page cache: sqlite error %d (a connection was opened before the store)", rc)
	}
	return nil
}

// statOut receives what SQLite's configuration and status calls write
// through pointers; statMu serialises its users.
var (
	statMu  sync.Mutex
	statOut [2]int32
)
