package integration

import (
	"os"
	"testing"

	"github.com/emersion/go-imap/v2/imapclient"
)

func TestZZDebug(t *testing.T) {
	r := &Roost{Addr: map[string]string{"imap": "127.0.0.1:22143"}}
	c, err := imapclient.DialInsecure(r.Addr["imap"], &imapclient.Options{DebugWriter: os.Stdout})
	if err != nil {
		t.Fatal(err)
	}
	c.Login("py@example.org", "pw").Wait()
	for _, mb := range []string{"Trash", "Archive", "INBOX"} {
		got := imapMailbox(t, c, mb)
		t.Logf("%s: %d", mb, len(got))
	}
}
