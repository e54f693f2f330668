//go:build unix

package imapserver

import (
	"syscall"
	"testing"
)

// raiseNoFile lifts the soft open-file limit to at least want (up to the
// hard limit); benchmarks with thousands of sessions need it.
func raiseNoFile(b *testing.B, want uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= want {
		return
	}
	if lim.Max < want {
		b.Skipf("RLIMIT_NOFILE hard limit %d is below the %d descriptors needed", lim.Max, want)
	}
	lim.Cur = want
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatalf("setrlimit: %v", err)
	}
}
