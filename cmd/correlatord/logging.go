package main

import (
	"fmt"
	"os"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"golang.org/x/term"
)

// newLogger builds the process logger: JSON for machines, console for a
// person at a terminal.
func newLogger(level, format string) (*zap.Logger, error) {
	lvl, err := zap.ParseAtomicLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log.level: %w", err)
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
		return nil, fmt.Errorf("--log.format: %q is not auto, json or console", format)
	}
	cfg.Level = lvl
	cfg.Sampling = nil // we never log per event, so sampling would only hide rare lines
	return cfg.Build()
}

// setup builds the logger and loads the configuration, as every subcommand
// that talks to the outside world starts.
func (f commonFlags) setup() (*zap.Logger, *Config, error) {
	logger, err := newLogger(f.logLevel, f.logFormat)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := loadConfig(f.configFile)
	if err != nil {
		_ = logger.Sync()
		return nil, nil, err
	}
	return logger, cfg, nil
}
