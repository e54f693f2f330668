package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/roost-mail/roost/internal/config"
	"github.com/roost-mail/roost/internal/mailstore"
	"github.com/roost-mail/roost/internal/queue"
)

func queueCommands() []command {
	return []command{
		{"queue list", "", "list outbound mail waiting: ID, from, to, attempts, next attempt, last error", queueList},
		{"queue retry", "[ID...]", "make entries (all without IDs) due now; none if an ID is unknown", queueRetry},
		{"queue drop", "ID...", "remove entries, bouncing each to its sender; none if an ID is unknown", queueDrop},
	}
}

func queueIDs(args []string) ([]int64, error) {
	var ids []int64
	for _, s := range args {
		id, err := strconv.ParseInt(s, 10, 64)
		if err != nil || id <= 0 {
			return nil, usageError("%q is not a queue entry ID (see roost queue list)", s)
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func queueList(e *env, args []string) error {
	return withStore(args, newFlags("queue list"), 0, 0, func(ctx context.Context, _ *config.Config, st mailstore.Store, _ []string) error {
		es, err := queue.List(ctx, st)
		if err != nil {
			return err
		}
		for _, q := range es {
			from := q.From
			if from == "" {
				from = "<>"
			}
			fmt.Fprintf(e.stdout, "%d\t%s\t%s\t%d attempts\t%s\t%s\n", q.ID, from, strings.Join(q.Recipients, ","),
				q.Attempts, q.NextAttempt.UTC().Format(time.RFC3339), oneLine(q.LastError))
		}
		return nil
	})
}

func queueRetry(e *env, args []string) error {
	return withStore(args, newFlags("queue retry"), 0, -1, func(ctx context.Context, _ *config.Config, st mailstore.Store, pos []string) error {
		ids, err := queueIDs(pos)
		if err != nil {
			return err
		}
		n, err := queue.Retry(ctx, st, ids)
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%d entries due now\n", n)
		return nil
	})
}

func queueDrop(e *env, args []string) error {
	return withStore(args, newFlags("queue drop"), 1, -1, func(ctx context.Context, cfg *config.Config, st mailstore.Store, pos []string) error {
		ids, err := queueIDs(pos)
		if err != nil {
			return err
		}
		n, err := queue.Drop(ctx, st, cfg.Hostname, ids, nil)
		// Said even when a later entry failed, so the operator knows
		// which of the IDs are already gone.
		if n > 0 || err == nil {
			fmt.Fprintf(e.stdout, "%d entries dropped\n", n)
		}
		return err
	})
}
