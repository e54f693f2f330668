package main

import (
	"context"
	"fmt"

	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
)

func mailboxCommands() []command {
	return []command{
		{"mailbox list", "ACCOUNT", "list an account's mailboxes with counts", mailboxList},
	}
}

func mailboxList(e *env, args []string) error {
	return withStore(args, newFlags("mailbox list"), 1, 1, func(ctx context.Context, _ *config.Config, st mailstore.Store, pos []string) error {
		acct, err := account(ctx, st, pos[0])
		if err != nil {
			return err
		}
		mbs, err := st.ListMailboxes(ctx, acct.ID)
		if err != nil {
			return fmt.Errorf("list mailboxes of %s: %w", acct.Name, err)
		}
		for _, mb := range mbs {
			s, err := st.Status(ctx, acct.ID, mb.ID)
			if err != nil {
				return fmt.Errorf("status of %s: %w", mb.Name, err)
			}
			use := mb.SpecialUse
			if use == "" {
				use = "-"
			}
			fmt.Fprintf(e.stdout, "%s\t%s\t%d messages\t%d unseen\t%d bytes\n", mb.Name, use, s.Messages, s.Unseen, s.Size)
		}
		return nil
	})
}
