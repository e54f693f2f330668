package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
)

func deletedCommands() []command {
	return []command{
		{"deleted list", "ACCOUNT", "list expunged messages still recoverable: ID, mailbox, when, From, Subject", deletedList},
		{"deleted restore", "ACCOUNT ID...", "put deleted messages back into the mailbox they left, without \\Deleted", deletedRestore},
	}
}

// oneLine keeps a header value on one tab-free line of the listing.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	return s
}

func deletedList(e *env, args []string) error {
	return withStore(args, newFlags("deleted list"), 1, 1, func(ctx context.Context, _ *config.Config, st mailstore.Store, pos []string) error {
		acct, err := account(ctx, st, pos[0])
		if err != nil {
			return err
		}
		ds, err := st.ListDeleted(ctx, acct.ID)
		if err != nil {
			return fmt.Errorf("list deleted mail of %s: %w", acct.Name, err)
		}
		for _, d := range ds {
			fmt.Fprintf(e.stdout, "%d\t%s\t%s\t%s\t%s\n", d.ID, oneLine(d.MailboxName),
				d.ExpungedAt.UTC().Format(time.RFC3339), oneLine(d.From), oneLine(d.Subject))
		}
		return nil
	})
}

func deletedRestore(e *env, args []string) error {
	return withStore(args, newFlags("deleted restore"), 2, -1, func(ctx context.Context, _ *config.Config, st mailstore.Store, pos []string) error {
		acct, err := account(ctx, st, pos[0])
		if err != nil {
			return err
		}
		var ids []int64
		for _, s := range pos[1:] {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil || id <= 0 {
				return usageError("deleted restore: %q is not a message ID (see roost deleted list)", s)
			}
			ids = append(ids, id)
		}
		// The store restores a repeated ID once; the report below pairs
		// each result with its ID, so it needs the same list.
		ids = mailstore.DistinctIDs(ids)
		res, err := st.RestoreDeleted(ctx, acct.ID, ids)
		if errors.Is(err, mailstore.ErrNoSuchMessage) {
			return fmt.Errorf("restore: %w (see roost deleted list %s)", err, acct.Name)
		}
		if err != nil {
			return fmt.Errorf("restore: %w", err)
		}
		names := map[int64]string{}
		if mbs, err := st.ListMailboxes(ctx, acct.ID); err == nil {
			for _, mb := range mbs {
				names[mb.ID] = mb.Name
			}
		}
		for i, r := range res {
			fmt.Fprintf(e.stdout, "restored %d to %s UID %d\n", ids[i], names[r.MailboxID], r.UID)
		}
		return nil
	})
}
