package app

import (
	"context"
	"time"
)

const (
	// purgeEvery is how often expired deleted mail and tombstones go.
	purgeEvery = time.Hour
	// purgeLease names the cluster-wide lease that lets one node purge per
	// period. It is held for most of the period and not released, so
	// other nodes skip the run rather than repeat it.
	purgeLease = "retention-purge"
)

// retentionLoop purges once soon after start and then every purgeEvery
// until ctx ends.
func (a *App) retentionLoop(ctx context.Context) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.purgeOnce(ctx, time.Now())
		t.Reset(purgeEvery)
	}
}

// purgeOnce takes the lease and, if this node got it, drops deleted mail
// older than retention.deleted_days and tombstones older than
// retention.tombstone_days. It reports whether it purged.
func (a *App) purgeOnce(ctx context.Context, now time.Time) bool {
	ok, err := a.Store.AcquireLease(ctx, purgeLease, a.nodeID, now.Add(purgeEvery-5*time.Minute))
	if err != nil {
		a.log.Error("retention: lease", "err", err)
		return false
	}
	if !ok {
		return false // another node does it this period
	}
	day := 24 * time.Hour
	cutoff := now.Add(-time.Duration(a.cfg.Retention.DeletedDays) * day)
	tombCutoff := now.Add(-time.Duration(a.cfg.Retention.TombstoneDays) * day)
	n, err := a.Store.Purge(ctx, cutoff, tombCutoff)
	if err != nil {
		a.log.Error("retention: purge", "err", err)
		return false
	}
	a.log.Info("retention: purged", "items", n, "deleted_before", cutoff.Format(time.RFC3339), "tombstones_before", tombCutoff.Format(time.RFC3339))
	return true
}
