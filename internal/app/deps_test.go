package app

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path"
	"slices"
	"strings"
	"testing"
)

// The import rules of DESIGN.md section 1, checked on the real package
// graph (non-test imports; tests may import a backend to get a real store).

const module = "github.com/roost-mail/roost"

type pkgInfo struct {
	ImportPath string
	Imports    []string // direct
	Deps       []string // transitive
}

var frontEnds = []string{"internal/imapserver", "internal/pop3server", "internal/smtpserver", "internal/web"}

// rel strips the module path; "" for packages outside the module.
func rel(p string) string {
	r, ok := strings.CutPrefix(p, module+"/")
	if !ok {
		return ""
	}
	return r
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

func isFrontEnd(p string) bool { return slices.Contains(frontEnds, p) }

// violations lists every broken rule in the graph.
func violations(pkgs []pkgInfo) []string {
	var out []string
	for _, p := range pkgs {
		me := rel(p.ImportPath)
		if me == "" {
			continue
		}
		var deps, direct []string
		for _, d := range p.Deps {
			if r := rel(d); r != "" {
				deps = append(deps, r)
			}
		}
		for _, d := range p.Imports {
			if r := rel(d); r != "" {
				direct = append(direct, r)
			}
		}
		bad := func(dep, rule string) { out = append(out, me+" imports "+dep+": "+rule) }

		if isFrontEnd(me) {
			for _, d := range deps {
				if isFrontEnd(d) && d != me {
					bad(d, "front ends never import each other")
				}
				if under(d, "internal/storage") {
					bad(d, "front ends never import a storage backend")
				}
			}
		}
		switch me {
		case "internal/mailstore":
			for _, d := range deps {
				if under(d, "internal") && d != "internal/message" {
					bad(d, "mailstore imports only message")
				}
			}
		case "internal/message", "internal/config", "internal/tlsutil", "internal/linger", "internal/mailfile", "internal/nettest", "internal/benchmail", "internal/listen":
			for _, d := range deps {
				if under(d, "internal") {
					bad(d, path.Base(me)+" imports nothing internal")
				}
			}
		case "internal/auth":
			for _, d := range deps {
				if under(d, "internal") && d != "internal/mailstore" && d != "internal/message" {
					bad(d, "auth imports only mailstore")
				}
			}
		}
		// Only app (and tests) may name a backend; backends may use
		// their own subpackages.
		if me != "internal/app" && !under(me, "internal/storage") {
			for _, d := range direct {
				if under(d, "internal/storage") {
					bad(d, "only app imports storage backends")
				}
			}
		}
		// Nothing below cmd imports cmd or app.
		if !under(me, "cmd") {
			for _, d := range deps {
				if under(d, "cmd") || (d == "internal/app" && me != "internal/app") {
					bad(d, "imports go one way: cmd -> app -> the rest")
				}
			}
		}
	}
	slices.Sort(out)
	return out
}

func loadGraph(t *testing.T) []pkgInfo {
	t.Helper()
	cmd := exec.Command("go", "list", "-e", "-json=ImportPath,Imports,Deps", module+"/...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkgInfo
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkgInfo
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}

func TestImportRules(t *testing.T) {
	pkgs := loadGraph(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[rel(p.ImportPath)] = true
	}
	// The graph really holds the packages the rules are about.
	for _, must := range []string{"internal/mailstore", "internal/message", "internal/auth", "internal/app", "internal/web", "cmd/roost"} {
		if !seen[must] {
			t.Fatalf("go list did not report %s", must)
		}
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestImportRulesCatch feeds graphs that break each rule: the checker must
// report every one (so TestImportRules can fail).
func TestImportRulesCatch(t *testing.T) {
	m := func(p string) string { return module + "/" + p }
	bad := []pkgInfo{
		{ImportPath: m("internal/imapserver"), Imports: []string{m("internal/pop3server")}, Deps: []string{m("internal/pop3server")}},
		{ImportPath: m("internal/web"), Imports: []string{m("internal/queue")}, Deps: []string{m("internal/queue"), m("internal/storage/sqlite")}},
		{ImportPath: m("internal/mailstore"), Imports: []string{m("internal/auth")}, Deps: []string{m("internal/auth"), m("internal/message")}},
		{ImportPath: m("internal/message"), Imports: []string{m("internal/config")}, Deps: []string{m("internal/config")}},
		{ImportPath: m("internal/delivery"), Imports: []string{m("internal/storage/postgres")}, Deps: []string{m("internal/storage/postgres")}},
		{ImportPath: m("internal/auth"), Imports: []string{m("internal/app")}, Deps: []string{m("internal/app")}},
	}
	got := violations(bad)
	for _, want := range []string{
		"internal/imapserver imports internal/pop3server: front ends never import each other",
		"internal/web imports internal/storage/sqlite: front ends never import a storage backend",
		"internal/mailstore imports internal/auth: mailstore imports only message",
		"internal/message imports internal/config: message imports nothing internal",
		"internal/delivery imports internal/storage/postgres: only app imports storage backends",
		"internal/auth imports internal/app: auth imports only mailstore",
		"internal/auth imports internal/app: imports go one way: cmd -> app -> the rest",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("missed: %s\ngot: %q", want, got)
		}
	}
	good := []pkgInfo{
		{ImportPath: m("internal/app"), Imports: []string{m("internal/storage/sqlite")}, Deps: []string{m("internal/storage/sqlite"), m("internal/mailstore")}},
		{ImportPath: m("internal/storage/sqlite"), Imports: []string{m("internal/mailstore")}, Deps: []string{m("internal/mailstore"), m("internal/message")}},
		{ImportPath: m("internal/imapserver"), Imports: []string{m("internal/auth")}, Deps: []string{m("internal/auth"), m("internal/mailstore")}},
		{ImportPath: m("cmd/roost"), Imports: []string{m("internal/app")}, Deps: []string{m("internal/app"), m("internal/storage/sqlite")}},
	}
	if v := violations(good); len(v) != 0 {
		t.Fatalf("false alarms: %q", v)
	}
}
