package main

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
)

// newLogger builds the process logger: JSON for machines, console for a
// person at a terminal. The level is atomic so SIGHUP can change it.
func newLogger(level, format string) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		return nil, lvl, fmt.Errorf("--log.level: %w", err)
	}
	if format == "auto" {
		format = "json"
		if term.IsTerminal(int(os.Stderr.Fd())) {
			format = "console"
		}
	}
	var cfg zap.Config
	switch format {
	case "json":
		cfg = zap.NewProductionConfig()
		cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	case "console":
		cfg = zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
	default:
		return nil, lvl, fmt.Errorf("--log.format: %q is not auto, json or console", format)
	}
	cfg.Level = lvl
	cfg.Sampling = nil // we never log per event, so sampling would only hide rare lines
	l, err := cfg.Build()
	return l, lvl, err
}
