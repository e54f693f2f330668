//go:build !unix

package imapserver

import "testing"

// raiseNoFile: only unix has RLIMIT_NOFILE; elsewhere the benchmark runs
// with what the system gives.
func raiseNoFile(*testing.B, uint64) {}
