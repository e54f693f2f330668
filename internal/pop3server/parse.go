package pop3server

import (
	"errors"
	"strings"
)

// maxLine bounds every line a client sends. RFC 2449 section 4 raises the
// command line limit to 255 octets including CRLF; SASL responses
// (RFC 5034 section 4) and long passwords can be longer, so one generous
// limit applies to every line and a longer line is refused and discarded.
const maxLine = 8192

// maxArgs bounds the arguments of any command: the longest, TOP, has two
// (RFC 1939 section 7); AUTH has a mechanism and an initial response.
const maxArgs = 2

// command is one parsed client line.
type command struct {
	// Name is the keyword in upper case (RFC 1939 section 3: keywords are
	// case-insensitive).
	Name string
	// Args are the space-separated arguments.
	Args []string
	// Rest is everything after the keyword and its one separating space,
	// verbatim: PASS takes it whole (RFC 1939 section 7, PASS: "a POP3
	// server may treat spaces in the argument as part of the password").
	Rest string
}

var (
	errEmptyLine   = errors.New("empty command line")
	errBadKeyword  = errors.New("malformed command keyword")
	errBadArgument = errors.New("malformed command argument")
	errTooManyArgs = errors.New("too many arguments")
)

// parseCommand splits a line (without its line end) into keyword and
// arguments. RFC 1939 section 3: "Commands in the POP3 consist of a
// case-insensitive keyword, possibly followed by one or more arguments ...
// Keywords and arguments consist of printable ASCII characters. Keywords
// and arguments are each separated by a single SPACE character. Keywords are
// three or four characters long." Runs of spaces between arguments are
// tolerated (some clients send them); other control characters are not.
func parseCommand(line string) (command, error) {
	if line == "" {
		return command{}, errEmptyLine
	}
	kw, rest, _ := strings.Cut(line, " ")
	if len(kw) < 3 || len(kw) > 4 {
		return command{}, errBadKeyword
	}
	for i := 0; i < len(kw); i++ {
		c := kw[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z') {
			return command{}, errBadKeyword
		}
	}
	cmd := command{Name: strings.ToUpper(kw), Rest: rest}
	if cmd.Name == "PASS" {
		// The password is the rest of the line, spaces and all; only
		// control characters are refused.
		if !printable(rest, true) {
			return command{}, errBadArgument
		}
		return cmd, nil
	}
	for _, f := range strings.Split(rest, " ") {
		if f == "" {
			continue
		}
		if !printable(f, false) {
			return command{}, errBadArgument
		}
		if len(cmd.Args) == maxArgs {
			return command{}, errTooManyArgs
		}
		cmd.Args = append(cmd.Args, f)
	}
	return cmd, nil
}

// printable reports whether s is printable ASCII (0x21-0x7E; also space
// when spaces is set). Octets above 0x7E are allowed in PASS only: a
// UTF-8 password is the client's business.
func printable(s string, spaces bool) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ':
			if !spaces {
				return false
			}
		case c < 0x20 || c == 0x7f:
			return false
		case c > 0x7e && !spaces:
			return false
		}
	}
	return true
}

// parseMsgNumber parses a message-number argument: RFC 1939 section 3 and
// section 5 ("msg ... a message-number"), decimal digits only, no sign. It
// returns 0 and false for anything else, including values too large for
// any maildrop.
func parseMsgNumber(s string) (int, bool) {
	n, ok := parseDecimal(s)
	if !ok || n == 0 {
		return 0, false
	}
	return n, true
}

// parseDecimal parses a non-negative decimal number of at most 9 digits
// (TOP's line count, RFC 1939 section 7: "a non-negative number").
func parseDecimal(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// maxDevice bounds a device name; it becomes part of a lease name and a
// store key.
const maxDevice = 64

// splitDevice splits a login name "user@domain#device" into the account
// login and the POP3 view (DESIGN section 4: device views). The suffix is
// recognised only after the last "@": "#" is legal in a local part but
// never in a domain, so "a#b@example.org" stays a plain login. A device name
// is [A-Za-z0-9_-]{1,64}; it is folded to lower case so that "Phone" and
// "phone" are one view. ok is false when a suffix is present but invalid.
func splitDevice(login string) (user, device string, ok bool) {
	at := strings.LastIndexByte(login, '@')
	hash := strings.LastIndexByte(login, '#')
	if hash < 0 || hash < at || at < 0 {
		return login, "", true
	}
	user, device = login[:hash], login[hash+1:]
	if device == "" || len(device) > maxDevice {
		return user, "", false
	}
	for i := 0; i < len(device); i++ {
		c := device[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return user, "", false
		}
	}
	return user, strings.ToLower(device), true
}
