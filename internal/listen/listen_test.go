package listen

import (
	"errors"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

func TestRetry(t *testing.T) {
	accept := func(errno syscall.Errno) error {
		return &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", errno)}
	}
	var b Backoff
	for _, errno := range []syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EAGAIN} {
		if _, ok := b.Retry(accept(errno)); !ok {
			t.Errorf("%v: not retried", errno)
		}
	}
	if d, _ := b.Retry(accept(syscall.EMFILE)); d != 160*time.Millisecond {
		t.Errorf("sixth pause %v, want 160ms (doubling from 5ms)", d)
	}
	b.Reset()
	if d, _ := b.Retry(accept(syscall.EMFILE)); d != 5*time.Millisecond {
		t.Errorf("pause after Reset %v, want 5ms", d)
	}
	for _, err := range []error{net.ErrClosed, accept(syscall.EINVAL), errors.New("other")} {
		if _, ok := b.Retry(err); ok {
			t.Errorf("%v: retried", err)
		}
	}
}
