package message

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownEncoding is returned by DecodeBody for a Content-Transfer-Encoding
// it does not know (IMAP answers [UNKNOWN-CTE], RFC 3516 section 4.3).
var ErrUnknownEncoding = errors.New("unknown content-transfer-encoding")

// DecodeBody returns a part's body with its Content-Transfer-Encoding undone
// (for BINARY, RFC 3516). Decoding is lenient, as mail readers are: invalid
// quoted-printable escapes are kept as written and non-alphabet octets in
// base64 are skipped, so broken bodies still yield their content.
func DecodeBody(p *Part, raw []byte) ([]byte, error) {
	body := BodyBytes(raw, p)
	switch strings.ToLower(strings.TrimSpace(p.Encoding)) {
	case "", "7bit", "8bit", "binary":
		return body, nil
	case "quoted-printable":
		return decodeQP(body), nil
	case "base64":
		return decodeBase64(body), nil
	}
	return nil, fmt.Errorf("message: decoding %q: %w", p.Encoding, ErrUnknownEncoding)
}

// decodeQP undoes RFC 2045 section 6.7 quoted-printable: "=XX" is an octet,
// "=" at the end of a line is a soft line break, and white space at the end
// of a line is dropped (rule 3: it was added in transport). A "=" that
// starts neither is kept as it is (the section's advice for robust decoders).
func decodeQP(b []byte) []byte {
	out := make([]byte, 0, len(b))
	for len(b) > 0 {
		line := b
		var eol []byte
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i+1], b[i+1:]
			eol = line[len(line)-1:]
			line = line[:len(line)-1]
			if len(line) > 0 && line[len(line)-1] == '\r' {
				eol = []byte("\r\n")
				line = line[:len(line)-1]
			}
		} else {
			b = nil
		}
		for len(line) > 0 && (line[len(line)-1] == ' ' || line[len(line)-1] == '\t') {
			line = line[:len(line)-1]
		}
		soft := false
		for i := 0; i < len(line); i++ {
			c := line[i]
			if c != '=' {
				out = append(out, c)
				continue
			}
			if i == len(line)-1 {
				soft = true
				break
			}
			if i+2 < len(line) {
				if h, ok := unhex(line[i+1], line[i+2]); ok {
					out = append(out, h)
					i += 2
					continue
				}
			}
			out = append(out, '=')
		}
		if !soft {
			out = append(out, eol...)
		}
	}
	return out
}

func unhex(a, b byte) (byte, bool) {
	x, ok1 := hexVal(a)
	y, ok2 := hexVal(b)
	return x<<4 | y, ok1 && ok2
}

func hexVal(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	case c >= 'a' && c <= 'f':
		// RFC 2045 section 6.7 wants upper case, but lower case is common.
		return c - 'a' + 10, true
	}
	return 0, false
}

// decodeBase64 undoes RFC 2045 section 6.8 base64. Octets outside the
// alphabet are ignored (as the section says decoders must); decoding stops
// at the first "=" pad, and a last incomplete group yields what it can.
func decodeBase64(b []byte) []byte {
	clean := make([]byte, 0, len(b))
	for _, c := range b {
		if c == '=' {
			break
		}
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '/' {
			clean = append(clean, c)
		}
	}
	if len(clean)%4 == 1 {
		clean = clean[:len(clean)-1] // six bits make no octet
	}
	out := make([]byte, base64.RawStdEncoding.DecodedLen(len(clean)))
	// The input is all alphabet now and the non-strict decoder accepts
	// non-zero trailing bits, so there is no error to report; n is what
	// decoded either way.
	n, _ := base64.RawStdEncoding.Decode(out, clean)
	return out[:n]
}
