// Package nettest owns network fakes shared by the front ends' tests,
// which may not import each other: listeners that fail the way the
// kernel does under pressure.
package nettest

import (
	"net"
	"os"
	"sync/atomic"
	"syscall"
)

// ShortOfFDs wraps a listener so that its next n Accepts fail as accept(2)
// does when the process is out of file descriptors (EMFILE).
func ShortOfFDs(ln net.Listener, n int32) net.Listener {
	l := &shortOfFDs{Listener: ln}
	l.fails.Store(n)
	return l
}

type shortOfFDs struct {
	net.Listener
	fails atomic.Int32
}

func (l *shortOfFDs) Accept() (net.Conn, error) {
	if l.fails.Add(-1) >= 0 {
		return nil, &net.OpError{Op: "accept", Net: "tcp", Addr: l.Addr(), Err: os.NewSyscallError("accept4", syscall.EMFILE)}
	}
	return l.Listener.Accept()
}
