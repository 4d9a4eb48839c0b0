package main

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/cmdb"
)

// snapshotInterval is how often the running topology's version is compared
// with the last one written to ClickHouse.
const snapshotInterval = 10 * time.Second

// snapshotTopologies writes every topology version the store runs on to
// ClickHouse, so analytics can join events to the CMDB of their time. A
// failed write is retried at the next tick; nothing waits on it.
func snapshotTopologies(ctx context.Context, c *analytics.Client, store *cmdb.Store, source string, logger *zap.Logger) {
	logger = logger.With(zap.String("component", "cmdb-snapshot"))
	t := time.NewTicker(snapshotInterval)
	defer t.Stop()
	var last, lastErr string
	for {
		topo := store.Topology()
		if v := topo.Version(); v != last {
			start := time.Now()
			written, err := analytics.WriteTopology(ctx, c, topo, source, start)
			switch {
			case err != nil && ctx.Err() == nil:
				if err.Error() != lastErr { // log a lasting failure once
					logger.Warn("writing the topology snapshot failed; retrying", zap.String("version", v), zap.Error(err))
				}
				lastErr = err.Error()
			case err == nil:
				last, lastErr = v, ""
				if written {
					logger.Info("topology snapshot written", zap.String("version", v), zap.Int("cis", topo.Len()),
						zap.Int("relations", topo.NumRelations()), zap.Duration("took", time.Since(start)))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
