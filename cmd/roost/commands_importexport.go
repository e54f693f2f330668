package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailfile"
	"github.com/roost-mail/roost/internal/mailstore"
)

func importExportCommands() []command {
	return []command{
		{"import", "ACCOUNT MAILBOX PATH", "import an mbox file or a Maildir with its flags into MAILBOX (made if missing); Maildir++ .Sub.Folder subfolders are skipped: import each on its own", importCmd},
		{"export", "ACCOUNT MAILBOX PATH", "export MAILBOX to a new mbox file, or to a Maildir with flags when PATH ends in / or is a directory", exportCmd},
	}
}

// Import appends this many messages a call (or fewer, past
// importBatchBytes): one transaction per batch keeps a big import fast
// without holding the whole file in memory.
const (
	importBatch      = 100
	importBatchBytes = 16 << 20
)

// importer appends messages into one mailbox in batches and counts what
// is stored, so a failure can say how far the import got.
type importer struct {
	ctx      context.Context
	st       mailstore.Store
	cfg      *config.Config
	acct     mailstore.Account
	mb       mailstore.Mailbox
	pending  []mailstore.AppendRequest
	size     int
	imported int
}

// add queues one message (LF or CRLF lines) with where it came from, for
// messages. A message over the size limit fails here, after the messages
// before it are stored, rather than failing a whole batch.
func (im *importer) add(raw []byte, flags []string, date time.Time, where string) error {
	raw = mailfile.ToCRLF(raw)
	if limit := im.cfg.Limits.MaxMessageBytes; limit > 0 && int64(len(raw)) > limit {
		if err := im.flush(); err != nil {
			return err
		}
		return fmt.Errorf("%s is %d bytes, over limits.max_message_bytes (%d): %w", where, len(raw), limit, mailstore.ErrTooBig)
	}
	im.pending = append(im.pending, mailstore.AppendRequest{MailboxID: im.mb.ID, Raw: raw, Flags: flags, InternalDate: date})
	im.size += len(raw)
	if len(im.pending) >= importBatch || im.size >= importBatchBytes {
		return im.flush()
	}
	return nil
}

// flush appends the pending batch. Over quota, it retries the batch one
// message at a time, so that as much as fits is stored and the count of
// imported messages is exact.
func (im *importer) flush() error {
	if len(im.pending) == 0 {
		return nil
	}
	reqs := im.pending
	im.pending, im.size = im.pending[:0:0], 0
	_, err := im.st.Append(im.ctx, im.acct.ID, reqs)
	if err == nil {
		im.imported += len(reqs)
		return nil
	}
	if !errors.Is(err, mailstore.ErrOverQuota) {
		return err
	}
	for _, r := range reqs {
		if _, err := im.st.Append(im.ctx, im.acct.ID, []mailstore.AppendRequest{r}); err != nil {
			return err
		}
		im.imported++
	}
	return nil
}

func importCmd(e *env, args []string) error {
	return withStore(args, newFlags("import"), 3, 3, func(ctx context.Context, cfg *config.Config, st mailstore.Store, pos []string) error {
		acct, err := account(ctx, st, pos[0])
		if err != nil {
			return err
		}
		path := pos[2]
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("import: %w", err)
		}
		mb, err := openOrCreateMailbox(ctx, st, acct, pos[1])
		if err != nil {
			return err
		}
		im := &importer{ctx: ctx, st: st, cfg: cfg, acct: acct, mb: mb}
		if fi.IsDir() {
			err = importMaildir(im, path)
		} else {
			err = importMbox(im, path)
		}
		if err == nil {
			err = im.flush()
		}
		if err != nil {
			return fmt.Errorf("import into %s stopped after %d messages imported: %w", mb.Name, im.imported, importReason(err))
		}
		fmt.Fprintf(e.stdout, "imported %d messages into %s\n", im.imported, mb.Name)
		return nil
	})
}

// importReason words the store's refusals for an operator.
func importReason(err error) error {
	if errors.Is(err, mailstore.ErrOverQuota) {
		return fmt.Errorf("the account's quota is full (%w)", err)
	}
	return err
}

// openOrCreateMailbox finds MAILBOX, making it (and its parents) if
// missing.
func openOrCreateMailbox(ctx context.Context, st mailstore.Store, acct mailstore.Account, name string) (mailstore.Mailbox, error) {
	mb, err := st.GetMailbox(ctx, acct.ID, name)
	if errors.Is(err, mailstore.ErrNoSuchMailbox) {
		mb, err = st.CreateMailbox(ctx, acct.ID, name, "")
		if errors.Is(err, mailstore.ErrExists) { // made meanwhile by someone else
			mb, err = st.GetMailbox(ctx, acct.ID, name)
		}
	}
	if err != nil {
		return mb, fmt.Errorf("mailbox %q of %s: %w", name, acct.Name, err)
	}
	return mb, nil
}

func importMbox(im *importer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	r := mailfile.NewReader(f)
	for n := 1; ; n++ {
		m, err := r.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if err := im.add(m.Raw, nil, m.Date, fmt.Sprintf("message %d (line %d)", n, m.Line)); err != nil {
			return err
		}
	}
}

func importMaildir(im *importer, dir string) error {
	files, err := mailfile.ListMaildir(dir)
	if err != nil {
		return err
	}
	for _, f := range files {
		raw, err := os.ReadFile(f.Path)
		if err != nil {
			return err
		}
		if err := im.add(raw, f.Flags, f.ModTime, f.Path); err != nil {
			return err
		}
	}
	return nil
}

// exportBatch is how many messages export reads from the store at a time.
const exportBatch = 100

func exportCmd(e *env, args []string) error {
	return withStore(args, newFlags("export"), 3, 3, func(ctx context.Context, _ *config.Config, st mailstore.Store, pos []string) error {
		acct, err := account(ctx, st, pos[0])
		if err != nil {
			return err
		}
		mb, err := st.GetMailbox(ctx, acct.ID, pos[1])
		if err != nil {
			return fmt.Errorf("mailbox %q of %s: %w", pos[1], acct.Name, err)
		}
		path := pos[2]
		var n int
		if fi, err := os.Stat(path); strings.HasSuffix(path, "/") || (err == nil && fi.IsDir()) {
			n, err = exportMaildir(ctx, st, acct, mb, path)
			if err != nil {
				return fmt.Errorf("export of %s stopped after %d messages: %w", mb.Name, n, err)
			}
		} else if n, err = exportMbox(ctx, st, acct, mb, path); err != nil {
			return fmt.Errorf("export of %s: %w", mb.Name, err)
		}
		fmt.Fprintf(e.stdout, "exported %d messages from %s to %s\n", n, mb.Name, path)
		return nil
	})
}

// exported is one message as export writes it out.
type exported struct {
	raw    []byte // LF lines
	flags  []string
	date   time.Time
	sender string
}

// eachMessage calls fn for every message of mb in UID order, reading a
// batch of metadata and then its bytes, so memory holds one batch.
func eachMessage(ctx context.Context, st mailstore.Store, acct mailstore.Account, mb mailstore.Mailbox, fn func(exported) error) error {
	uids, _, err := st.UIDs(ctx, acct.ID, mb.ID)
	if err != nil {
		return err
	}
	for len(uids) > 0 {
		chunk := uids[:min(exportBatch, len(uids))]
		uids = uids[len(chunk):]
		var batch []exported
		var blobs []string
		err := st.Fetch(ctx, acct.ID, mb.ID, mailstore.CompactUIDs(chunk), mailstore.FetchInternalDate|mailstore.FetchEnvelope|mailstore.FetchIDs, 0, func(m *mailstore.Message) error {
			x := exported{flags: m.Flags, date: m.InternalDate, sender: mailfile.DefaultSender}
			if m.Envelope != nil && len(m.Envelope.From) > 0 && m.Envelope.From[0].Mailbox != "" {
				a := m.Envelope.From[0]
				x.sender = a.Mailbox
				if a.Host != "" {
					x.sender += "@" + a.Host
				}
			}
			batch = append(batch, x)
			blobs = append(blobs, m.BlobID)
			return nil
		})
		if err != nil {
			return err
		}
		for i := range batch {
			raw, err := st.ReadBlob(ctx, blobs[i])
			if errors.Is(err, mailstore.ErrNoSuchMessage) {
				continue // expunged and purged since the UIDs were read
			}
			if err != nil {
				return err
			}
			batch[i].raw = mailfile.ToLF(raw)
			if err := fn(batch[i]); err != nil {
				return err
			}
		}
	}
	return nil
}

// exportMbox writes a new mbox file; it never overwrites one, and removes
// what it wrote when it fails, so that running it again can succeed.
func exportMbox(ctx context.Context, st mailstore.Store, acct mailstore.Account, mb mailstore.Mailbox, path string) (n int, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return 0, fmt.Errorf("%s exists; export writes a new file and does not overwrite one", path)
	}
	if err != nil {
		return 0, err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	w := mailfile.NewWriter(f)
	err = eachMessage(ctx, st, acct, mb, func(x exported) error {
		n++
		return w.Write(&mailfile.Message{Sender: x.sender, Date: x.date, Raw: x.raw})
	})
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	return n, err
}

// exportMaildir adds the messages to a Maildir (made if missing), each
// with its flags in its name and its internal date as its mtime.
func exportMaildir(ctx context.Context, st mailstore.Store, acct mailstore.Account, mb mailstore.Mailbox, dir string) (int, error) {
	w, err := mailfile.CreateMaildir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	err = eachMessage(ctx, st, acct, mb, func(x exported) error {
		if err := w.Write(x.raw, x.flags, x.date); err != nil {
			return err
		}
		n++
		return nil
	})
	return n, err
}
