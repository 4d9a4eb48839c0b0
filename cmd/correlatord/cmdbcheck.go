package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/correlatord/correlatord/cmdb"
)

type cmdbCheckOptions struct {
	file, format string
}

// runCmdbCheck is `correlatord cmdb check FILE`: it prints the report and
// fails (exit 1) when the file has errors, so it can gate a CMDB export in CI.
func runCmdbCheck(w io.Writer, o cmdbCheckOptions) error {
	report, err := cmdb.CheckFile(o.file, o.format, nil)
	if err != nil {
		return err
	}
	if err := report.WriteText(w); err != nil {
		return err
	}
	if !report.OK() {
		return errors.New("cmdb check: " + o.file + " has errors")
	}
	return nil
}

// loadTopology builds a topology from a file, for replay.
func loadTopology(ctx context.Context, file, format string, bindLabels []string) (*cmdb.Topology, error) {
	src, err := cmdb.NewFileSource(file, format, nil)
	if err != nil {
		return nil, fmt.Errorf("--cmdb: %w", err)
	}
	doc, err := src.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("--cmdb: %w", err)
	}
	topo, err := cmdb.Build(doc, cmdb.BuildOptions{Source: file, BindLabels: bindLabels})
	if err != nil {
		return nil, fmt.Errorf("--cmdb: %w", err)
	}
	return topo, nil
}
