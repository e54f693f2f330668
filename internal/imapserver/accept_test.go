package imapserver

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/roost-mail/roost/internal/nettest"
)

// A burst of connections that hits the descriptor limit must not stop the
// listener for good: the server waits and accepts again once descriptors
// are free, as it does for other passing accept failures.
func TestAcceptSurvivesEMFILE(t *testing.T) {
	env := newTestEnv(t, Config{})
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := nettest.ShortOfFDs(inner, 3)
	served := make(chan error, 1)
	go func() { served <- env.srv.Serve(ln, false) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = env.srv.Shutdown(ctx)
		<-served
	})
	c, err := net.DialTimeout("tcp", inner.Addr().String(), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	greeting, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(greeting, "* OK") {
		t.Fatalf("after EMFILE: greeting %q, %v", greeting, err)
	}
}
