package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Load reads, strictly decodes and validates the file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	cfg, err := Parse(data, path)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Parse decodes TOML over Defaults. Every key must be one Config knows and
// every value of the right type; an error names the key and its line.
// name labels errors (the file's path). Parse does not Validate.
func Parse(data []byte, name string) (*Config, error) {
	cfg := Defaults()
	md, err := toml.Decode(string(data), cfg)
	if err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			if pe.LastKey != "" {
				return nil, fmt.Errorf("%s: line %d: key %q: %s", name, pe.Position.Line, pe.LastKey, pe.Message)
			}
			return nil, fmt.Errorf("%s: line %d: %s", name, pe.Position.Line, pe.Message)
		}
		// Type mismatches come as `toml: line N (last key "k"): ...`,
		// without the line when the key was defined implicitly (a
		// dotted key); find it then.
		if m := typeErrRE.FindStringSubmatch(err.Error()); m != nil {
			line := m[1]
			if line == "" {
				line = strconv.Itoa(keyLines(data)[m[2]])
			}
			return nil, fmt.Errorf("%s: line %s: key %q: %s", name, line, m[2], m[3])
		}
		return nil, fmt.Errorf("%s: %s", name, strings.TrimPrefix(err.Error(), "toml: "))
	}
	if und := md.Undecoded(); len(und) > 0 {
		lines := keyLines(data)
		var msgs []string
		reported := map[string]bool{}
	keys:
		for _, k := range und {
			// An unknown table's keys are unknown too; name only the table.
			for i := 1; i < len(k); i++ {
				if reported[k[:i].String()] {
					continue keys
				}
			}
			reported[k.String()] = true
			msgs = append(msgs, fmt.Sprintf("line %d: unknown key %q", lineOf(lines, k), k.String()))
		}
		return nil, fmt.Errorf("%s: %s", name, strings.Join(msgs, "; "))
	}
	// BurntSushi/toml decodes an integer into a time.Duration as
	// nanoseconds, so `fail_delay = 1` would quietly mean 1ns (no delay
	// after a failed login at all). Durations are written as strings.
	for _, k := range durationKeys {
		if md.IsDefined(k...) && md.Type(k...) != "String" {
			key := toml.Key(k)
			return nil, fmt.Errorf("%s: line %d: key %q: a duration is a string such as \"1s\" or \"10m\", not %s", name, lineOf(keyLines(data), key), key.String(), strings.ToLower(md.Type(k...)))
		}
	}
	return cfg, nil
}

// durationKeys are Config's time.Duration fields.
var durationKeys = [][]string{{"auth", "fail_delay"}, {"auth", "cache_ttl"}}

var (
	typeErrRE = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key "(.*)"\): (.*)$`)
	// A key is bare (A-Za-z0-9_-) or quoted; dotted keys join them.
	keyPart  = `(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')`
	dotted   = keyPart + `(?:\s*\.\s*` + keyPart + `)*`
	headerRE = regexp.MustCompile(`^\s*\[\[?\s*(` + dotted + `)\s*\]\]?`)
	assignRE = regexp.MustCompile(`^\s*(` + dotted + `)\s*=`)
	partRE   = regexp.MustCompile(keyPart)
)

// keyLines maps each key path defined in the (already valid) TOML text to
// the line it is defined on. BurntSushi/toml reports undecoded keys
// without positions, so this finds them again: table headers set the
// prefix, "key =" lines add a key; multi-line strings are skipped.
func keyLines(data []byte) map[string]int {
	out := map[string]int{}
	var table []string
	inMulti := ""
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if inMulti != "" {
			if strings.Count(line, inMulti)%2 == 1 {
				inMulti = ""
			}
			continue
		}
		if m := headerRE.FindStringSubmatch(line); m != nil {
			table = splitKey(m[1])
			record(out, table, n)
			continue
		}
		if m := assignRE.FindStringSubmatch(line); m != nil {
			key := append(append([]string{}, table...), splitKey(m[1])...)
			record(out, key, n)
			rest := line[len(m[0]):]
			for _, q := range []string{`"""`, `'''`} {
				if strings.Count(rest, q)%2 == 1 {
					inMulti = q
				}
			}
		}
	}
	return out
}

// record notes a key and its implicit parents (first definition wins).
func record(out map[string]int, key []string, line int) {
	for i := 1; i <= len(key); i++ {
		k := toml.Key(key[:i]).String()
		if _, ok := out[k]; !ok {
			out[k] = line
		}
	}
}

func splitKey(s string) []string {
	var parts []string
	for _, p := range partRE.FindAllString(s, -1) {
		if len(p) >= 2 && (p[0] == '"' || p[0] == '\'') {
			p = strings.ReplaceAll(p[1:len(p)-1], `\"`, `"`)
		}
		parts = append(parts, p)
	}
	return parts
}

// lineOf finds the line of k or, for a key inside an inline table, of its
// nearest enclosing key; 0 if unknown.
func lineOf(lines map[string]int, k toml.Key) int {
	for i := len(k); i > 0; i-- {
		if n, ok := lines[k[:i].String()]; ok {
			return n
		}
	}
	return 0
}
