package pop3server

import (
	"bufio"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/nettest"
)

// A burst of connections that hits the descriptor limit must not stop the
// listener for good: the server waits and accepts again once descriptors
// are free.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	e := newEnv(t)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := nettest.ShortOfFDs(inner, 3)
	e.serve(ln, false)
	c, err := net.DialTimeout("tcp", inner.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "+OK") {
		t.Fatalf("after EMFILE: greeting %q, %v", greeting, err)
	}
}
