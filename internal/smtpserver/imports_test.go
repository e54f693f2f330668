package smtpserver

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestImportDirection pins DESIGN section 1: the SMTP front end, delivery
// and the queue never import a storage backend or another front end (tests
// may use the sqlite backend as a real store).
func TestImportDirection(t *testing.T) {
	forbidden := []string{"internal/storage", "internal/imapserver", "internal/pop3server", "internal/web", "internal/app", "/cmd/"}
	for _, dir := range []string{".", "../delivery", "../queue"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			if strings.HasSuffix(f, "_test.go") {
				continue
			}
			af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range af.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				for _, bad := range forbidden {
					if strings.Contains(p, "roost-mail/roost/") && strings.Contains(p, bad) {
						t.Errorf("%s imports %s", f, p)
					}
				}
				if strings.HasSuffix(dir, "delivery") && strings.Contains(p, "roost/internal/queue") {
					t.Errorf("%s: delivery must not import the queue", f)
				}
			}
		}
	}
}
