// Package mailfile reads and writes the two file formats other mail
// software exports mail in: mbox files (mboxrd, which also reads mboxo)
// and Maildir directories. It works on raw message bytes and knows
// nothing of the store, so `roost import` and `roost export` can stream a
// file of any size a message at a time.
//
// The package converts no line endings: mbox and Maildir files hold LF
// lines, the store holds CRLF, and the caller converts (ToCRLF, ToLF), so
// that parse -> write -> parse here is exact.
package mailfile

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// ErrNotMbox is returned when a file does not start with a "From " line.
var ErrNotMbox = errors.New("not an mbox file")

// DefaultSender is the envelope sender written when a message has none
// (the name mail programs use for mail without a sender).
const DefaultSender = "MAILER-DAEMON"

// asctime is the date layout of the "From " separator line.
const asctime = "Mon Jan _2 15:04:05 2006"

// Message is one message of an mbox file.
type Message struct {
	// Sender is the envelope sender of the separator line, never empty.
	Sender string
	// Date is the separator line's date; zero when it has none or none
	// that parses.
	Date time.Time
	// Raw is the message with the mboxrd quoting undone. It ends with a
	// line end unless it is empty.
	Raw []byte
	// Line is the line number of the separator line in the file.
	Line int
}

// Reader reads an mbox file a message at a time.
type Reader struct {
	br   *bufio.Reader
	line []byte // the current line, reused
	sep  []byte // the separator line of the next message, nil if none
	// lineNo counts lines read, for error messages; sepLine is the line
	// of sep.
	lineNo, sepLine int
	started         bool
	eof             bool
	err             error
}

// NewReader reads an mbox file from r.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, 64<<10)}
}

// readLine reads one whole line with its line end (none at EOF), however
// long: a base64 body without line breaks must not fail the import.
func (r *Reader) readLine() ([]byte, error) {
	r.line = r.line[:0]
	for {
		chunk, err := r.br.ReadSlice('\n')
		r.line = append(r.line, chunk...)
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(r.line) > 0 {
			r.lineNo++
		}
		return r.line, err
	}
}

func isEmptyLine(l []byte) bool {
	return len(l) == 1 && l[0] == '\n' || len(l) == 2 && l[0] == '\r' && l[1] == '\n'
}

var fromPrefix = []byte("From ")

// Next returns the next message, or io.EOF after the last. An empty file
// (or one of empty lines only) holds no messages; any other file must
// start with a "From " line (ErrNotMbox).
func (r *Reader) Next() (*Message, error) {
	if r.err != nil {
		return nil, r.err
	}
	if !r.started {
		r.started = true
		if err := r.first(); err != nil {
			r.err = err
			return nil, err
		}
	}
	if r.sep == nil {
		r.err = io.EOF
		return nil, io.EOF
	}
	m := parseSeparator(r.sep)
	m.Line = r.sepLine
	r.sep = nil
	var raw []byte
	prevEmpty, last := false, 0
	for !r.eof {
		line, err := r.readLine()
		if err == io.EOF {
			r.eof = true
		} else if err != nil {
			r.err = fmt.Errorf("line %d: %w", r.lineNo, err)
			return nil, r.err
		}
		if len(line) == 0 {
			break
		}
		// A "From " line starts a message only after an empty line: one
		// elsewhere is body text an mboxo writer failed to quote.
		if prevEmpty && bytes.HasPrefix(line, fromPrefix) {
			r.sep, r.sepLine = bytes.Clone(line), r.lineNo
			break
		}
		prevEmpty, last = isEmptyLine(line), len(raw)
		if isQuotedFrom(line) && line[0] == '>' {
			line = line[1:]
		}
		raw = append(raw, line...)
	}
	// The empty line before a separator (and at the end of the file)
	// belongs to the format, not to the message.
	if prevEmpty {
		raw = raw[:last]
	}
	if len(raw) > 0 && raw[len(raw)-1] != '\n' {
		raw = append(raw, '\n')
	}
	m.Raw = raw
	return m, nil
}

// first skips leading empty lines and reads the first separator.
func (r *Reader) first() error {
	for {
		line, err := r.readLine()
		if err != nil && err != io.EOF {
			return fmt.Errorf("line %d: %w", r.lineNo, err)
		}
		if err == io.EOF {
			r.eof = true
		}
		if len(line) == 0 {
			return nil
		}
		if isEmptyLine(line) {
			if r.eof {
				return nil
			}
			continue
		}
		if !bytes.HasPrefix(line, fromPrefix) {
			return fmt.Errorf("line %d does not start with \"From \": %w", r.lineNo, ErrNotMbox)
		}
		r.sep, r.sepLine = bytes.Clone(line), r.lineNo
		return nil
	}
}

// isQuotedFrom reports whether line is ">*From ": the lines mboxrd quotes
// by one more '>' on writing and unquotes by one on reading.
func isQuotedFrom(line []byte) bool {
	return bytes.HasPrefix(bytes.TrimLeft(line, ">"), fromPrefix)
}

// dateLayouts are the separator dates seen in the wild: asctime (the
// standard), with a zone before or after the year, and RFC 5322 dates.
var dateLayouts = []string{
	"Mon Jan 2 15:04:05 2006",
	"Mon Jan 2 15:04:05 -0700 2006",
	"Mon Jan 2 15:04:05 MST 2006",
	"Mon Jan 2 15:04:05 2006 -0700",
	"Mon, 2 Jan 2006 15:04:05 -0700",
	"2 Jan 2006 15:04:05 -0700",
}

// parseSeparator reads "From sender date" (any line end already there).
func parseSeparator(line []byte) *Message {
	rest := strings.TrimRight(string(line[len(fromPrefix):]), "\r\n")
	sender, date, _ := strings.Cut(rest, " ")
	m := &Message{Sender: cleanSender(sender)}
	date = strings.Join(strings.Fields(date), " ")
	for _, layout := range dateLayouts {
		if t, err := time.Parse(layout, date); err == nil {
			// A date the writer could not write back as asctime is as
			// good as none.
			if y := t.UTC().Year(); y >= 1 && y <= 9999 {
				m.Date = t
			}
			break
		}
	}
	return m
}

// cleanSender keeps the separator line one line of three fields: a
// sender that is empty or holds a space or control character becomes
// DefaultSender.
func cleanSender(s string) string {
	if s == "" {
		return DefaultSender
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] == 0x7f {
			return DefaultSender
		}
	}
	return s
}

// Writer writes an mboxrd file.
type Writer struct {
	bw *bufio.Writer
}

// NewWriter writes an mbox file to w; call Flush at the end.
func NewWriter(w io.Writer) *Writer {
	return &Writer{bw: bufio.NewWriterSize(w, 64<<10)}
}

// Write appends a message: a "From sender date" line (date in asctime,
// UTC; the epoch when zero), the message with every ">*From " line quoted
// by one more '>', a line end if it has none, and the empty line that
// ends a message.
func (w *Writer) Write(m *Message) error {
	d := m.Date
	if d.IsZero() {
		d = time.Unix(0, 0)
	}
	w.bw.WriteString("From " + cleanSender(m.Sender) + " " + d.UTC().Format(asctime) + "\n")
	raw := m.Raw
	for len(raw) > 0 {
		i := bytes.IndexByte(raw, '\n')
		line := raw
		if i >= 0 {
			line = raw[:i+1]
		}
		if isQuotedFrom(line) {
			w.bw.WriteByte('>')
		}
		w.bw.Write(line)
		raw = raw[len(line):]
	}
	if len(m.Raw) > 0 && m.Raw[len(m.Raw)-1] != '\n' {
		w.bw.WriteByte('\n')
	}
	_, err := w.bw.WriteString("\n")
	return err
}

// Flush writes out what is buffered.
func (w *Writer) Flush() error { return w.bw.Flush() }

// ToCRLF turns every bare LF into CRLF: the store keeps (and IMAP and
// POP3 serve) messages with CRLF line ends.
func ToCRLF(b []byte) []byte {
	n := 0
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			n++
		}
	}
	if n == 0 {
		return b
	}
	out := make([]byte, 0, len(b)+n)
	for i, c := range b {
		if c == '\n' && (i == 0 || b[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, c)
	}
	return out
}

// ToLF turns every CRLF into LF: mbox and Maildir files have LF lines,
// and mail readers take a CR before the LF as part of the line.
func ToLF(b []byte) []byte {
	if !bytes.Contains(b, []byte("\r\n")) {
		return b
	}
	return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n"))
}
