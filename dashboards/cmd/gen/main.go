// Command gen writes correlatord's Grafana dashboards (package dashboards)
// as JSON files into a folder, for Grafana's file provisioning:
//
//	go run ./dashboards/cmd/gen -out deploy/grafana/dashboards
//
// The folder holds generated files only: JSON files there that are not
// generated any more are removed.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/dashboards"
)

func main() {
	out := flag.String("out", "deploy/grafana/dashboards", "folder to write the dashboards to")
	db := flag.String("database", analytics.DefaultDatabase, "ClickHouse database of the SQL panels (the daemon's clickhouse.database)")
	flag.Parse()
	if err := run(*out, *db); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(out, db string) error {
	built, err := dashboards.Dashboards(dashboards.Options{Database: db})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, b := range built {
		keep[b.FileName()] = true
		if err := os.WriteFile(filepath.Join(out, b.FileName()), b.JSON, 0o644); err != nil {
			return err
		}
		fmt.Printf("%s: %s (%d queries)\n", filepath.Join(out, b.FileName()), b.Title, len(b.Queries))
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() && strings.HasSuffix(e.Name(), ".json") && !keep[e.Name()] {
			if err := os.Remove(filepath.Join(out, e.Name())); err != nil {
				return err
			}
			fmt.Printf("%s: removed (not generated)\n", filepath.Join(out, e.Name()))
		}
	}
	return nil
}
