package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/correlatord/correlatord/analytics"
)

// runMigrate is `correlatord migrate`: apply the ClickHouse schema and exit.
// `run` applies it too at start; this lets an operator do it ahead of a
// rollout, or check that the schema is current.
func runMigrate(ctx context.Context, flags commonFlags) error {
	logger, cfg, err := flags.setup()
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	if !cfg.ClickHouse.Enabled() {
		return errors.New("migrate: no clickhouse.addr in the configuration; nothing to migrate")
	}
	client, err := analytics.Open(ctx, cfg.ClickHouse, logger)
	if err != nil {
		return err
	}
	defer client.Close()
	applied, err := analytics.Migrate(ctx, client, logger)
	if err != nil {
		return err
	}
	if len(applied) == 0 {
		fmt.Println("schema up to date; nothing applied")
	}
	for _, m := range applied {
		fmt.Println("applied", m)
	}
	return nil
}
