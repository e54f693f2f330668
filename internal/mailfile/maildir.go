package mailfile

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// The IMAP system flags a Maildir info suffix can carry, spelled as the
// store spells them (this package imports nothing of Roost's).
const (
	FlagSeen     = `\Seen`
	FlagAnswered = `\Answered`
	FlagFlagged  = `\Flagged`
	FlagDeleted  = `\Deleted`
	FlagDraft    = `\Draft`
)

// maildirFlags maps the info letters (https://cr.yp.to/proto/maildir.html)
// to flags, in the ASCII order the info must list them in.
var maildirFlags = []struct {
	letter byte
	flag   string
}{
	{'D', FlagDraft},
	{'F', FlagFlagged},
	{'R', FlagAnswered},
	{'S', FlagSeen},
	{'T', FlagDeleted},
}

// infoSep starts the "experimental semantics" info of a file name, the
// only kind in use.
const infoSep = ":2,"

// FlagsFromName reads the flags of a Maildir file name's info; letters it
// does not know (keywords of one program or another) are ignored.
func FlagsFromName(name string) []string {
	i := strings.LastIndex(name, infoSep)
	if i < 0 {
		return nil
	}
	var flags []string
	for _, c := range []byte(name[i+len(infoSep):]) {
		for _, f := range maildirFlags {
			if f.letter == c && !slices.Contains(flags, f.flag) {
				flags = append(flags, f.flag)
			}
		}
	}
	return flags
}

// Info is the ":2,LETTERS" suffix for flags (case-insensitive, as IMAP
// system flags are); flags without a letter are left out.
func Info(flags []string) string {
	b := []byte(infoSep)
	for _, f := range maildirFlags {
		for _, g := range flags {
			if strings.EqualFold(f.flag, g) {
				b = append(b, f.letter)
				break
			}
		}
	}
	return string(b)
}

// MaildirFile is one message file of a Maildir.
type MaildirFile struct {
	Path    string
	New     bool // in new/: not yet seen by any mail reader
	Flags   []string
	ModTime time.Time // when it was delivered, for want of anything better
}

// ListMaildir lists the messages in dir's cur/ and new/ (not tmp/, which
// holds deliveries in progress), oldest first. Subfolders of a Maildir++
// tree (".Name" directories) are not listed: each is a Maildir of its own.
// A message in new/ has no \Seen, whatever its name says.
func ListMaildir(dir string) ([]MaildirFile, error) {
	if err := isMaildir(dir); err != nil {
		return nil, err
	}
	var out []MaildirFile
	for _, sub := range []string{"cur", "new"} {
		ents, err := os.ReadDir(filepath.Join(dir, sub))
		if err != nil {
			return nil, fmt.Errorf("read maildir: %w", err)
		}
		for _, e := range ents {
			// Dot files are not messages (some programs keep state there).
			if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
				continue
			}
			info, err := e.Info()
			if err != nil {
				return nil, fmt.Errorf("read maildir: %w", err)
			}
			f := MaildirFile{Path: filepath.Join(dir, sub, e.Name()), New: sub == "new", ModTime: info.ModTime(), Flags: FlagsFromName(e.Name())}
			if f.New {
				f.Flags = slices.DeleteFunc(f.Flags, func(s string) bool { return s == FlagSeen })
			}
			out = append(out, f)
		}
	}
	slices.SortStableFunc(out, func(a, b MaildirFile) int {
		if c := a.ModTime.Compare(b.ModTime); c != 0 {
			return c
		}
		return strings.Compare(filepath.Base(a.Path), filepath.Base(b.Path))
	})
	return out, nil
}

// isMaildir checks that dir has cur/ and new/: a directory without them
// is more likely a wrong argument than an empty Maildir.
func isMaildir(dir string) error {
	for _, sub := range []string{"cur", "new"} {
		fi, err := os.Stat(filepath.Join(dir, sub))
		if err != nil || !fi.IsDir() {
			return fmt.Errorf("%s is not a maildir: it has no %s/ directory", dir, sub)
		}
	}
	return nil
}

// MaildirWriter delivers messages into a Maildir.
type MaildirWriter struct {
	dir  string
	host string
	seq  atomic.Uint64
}

// CreateMaildir makes dir with tmp/, new/ and cur/ (any of them may
// exist already: exporting into an existing Maildir adds to it).
func CreateMaildir(dir string) (*MaildirWriter, error) {
	for _, sub := range []string{"tmp", "new", "cur"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return nil, fmt.Errorf("create maildir: %w", err)
		}
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	// The name's host part must not hold the path or info separators.
	host = strings.NewReplacer("/", `\057`, ":", `\072`).Replace(host)
	return &MaildirWriter{dir: dir, host: host}, nil
}

// Write stores raw (written as given: convert it to LF first) in cur/
// with the flags in its name and modTime as its modification time, which
// mail readers take as the delivery date. It writes to tmp/ and renames,
// so a reader never sees half a message.
func (w *MaildirWriter) Write(raw []byte, flags []string, modTime time.Time) error {
	name, err := w.uniqueName(modTime)
	if err != nil {
		return err
	}
	tmp := filepath.Join(w.dir, "tmp", name)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("write maildir message: %w", err)
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && !modTime.IsZero() {
		err = os.Chtimes(tmp, modTime, modTime)
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(w.dir, "cur", name+Info(flags)))
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write maildir message: %w", err)
	}
	return nil
}

// uniqueName follows the Maildir convention "time.unique.host"; the
// unique part has the process, a counter and random bytes, so that two
// exports into one Maildir, even at the same second, never collide. The
// counter is padded so that names of one second sort in the order written
// (import sorts by mtime, then name).
func (w *MaildirWriter) uniqueName(t time.Time) (string, error) {
	if t.IsZero() {
		t = time.Now()
	}
	var rnd [6]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return "", fmt.Errorf("maildir file name: %w", err)
	}
	return fmt.Sprintf("%d.P%dQ%08dR%s.%s", t.Unix(), os.Getpid(), w.seq.Add(1), hex.EncodeToString(rnd[:]), w.host), nil
}
