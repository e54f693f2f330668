// Package listen owns what the front ends share about accepting
// connections: which Accept errors pass, and the pause before trying
// again. It imports nothing of Roost's.
package listen

import (
	"errors"
	"net"
	"syscall"
	"time"
)

// Backoff paces Accept retries after errors that pass. The zero value is
// ready; one Backoff serves one accept loop.
type Backoff struct{ d time.Duration }

// Retry reports whether err from Accept passes and, if so, sleeps before
// the caller accepts again, doubling the pause from 5 ms up to 1 s, and
// returns the pause. Timeouts pass, and so does a moment out of file
// descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM), as
// net/http and go-smtp also assume: an accept loop that ended there would
// never accept again while the process went on looking healthy.
func (b *Backoff) Retry(err error) (time.Duration, bool) {
	var ne net.Error
	if !errors.As(err, &ne) || !(ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) ||
		errors.Is(err, syscall.ENOBUFS) || errors.Is(err, syscall.ENOMEM)) {
		return 0, false
	}
	b.d = min(max(2*b.d, 5*time.Millisecond), time.Second)
	time.Sleep(b.d)
	return b.d, true
}

// Reset starts the pauses over after a successful Accept.
func (b *Backoff) Reset() { b.d = 0 }
