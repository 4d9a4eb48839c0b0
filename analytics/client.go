package analytics

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/prometheus/common/config"
	"go.uber.org/zap"
)

// Version is a ClickHouse server version, e.g. 18.16.1.
type Version struct {
	Major, Minor, Patch int
}

// AtLeast reports whether v is major.minor or later.
func (v Version) AtLeast(major, minor int) bool {
	if v.Major != major {
		return v.Major > major
	}
	return v.Minor >= minor
}

// IsZero reports whether v is unset.
func (v Version) IsZero() bool { return v == Version{} }

func (v Version) String() string {
	return strconv.Itoa(v.Major) + "." + strconv.Itoa(v.Minor) + "." + strconv.Itoa(v.Patch)
}

// ParseVersion parses what `SELECT version()` returns: "18.16.1",
// "24.3.2.23" (a fourth component, the build, is ignored).
func ParseVersion(s string) (Version, error) {
	parts := strings.Split(strings.TrimSpace(s), ".")
	if len(parts) < 2 {
		return Version{}, fmt.Errorf("unrecognised ClickHouse version %q", s)
	}
	var n [3]int
	for i := 0; i < 3 && i < len(parts); i++ {
		v, err := strconv.Atoi(parts[i])
		if err != nil || v < 0 {
			return Version{}, fmt.Errorf("unrecognised ClickHouse version %q", s)
		}
		n[i] = v
	}
	return Version{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}

// Client is a connection pool to one ClickHouse deployment. It is safe for
// concurrent use.
type Client struct {
	conn     driver.Conn
	version  Version
	database string
	addr     []string
	logger   *zap.Logger
}

// Open connects to ClickHouse over the native protocol, checks the
// connection with a ping and reads the server version. The database need
// not exist yet: Migrate creates it, and every statement names it. Fields
// of cfg left at zero take their defaults.
func Open(ctx context.Context, cfg Config, logger *zap.Logger) (*Client, error) {
	if logger == nil {
		logger = zap.NewNop()
	}
	if !cfg.Enabled() {
		return nil, fmt.Errorf("analytics: no ClickHouse address configured (%s.addr)", configPath)
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("analytics: invalid configuration: %w", err)
	}
	password := string(cfg.Password)
	if cfg.PasswordFile != "" {
		b, err := os.ReadFile(cfg.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("analytics: reading %s.password_file: %w", configPath, err)
		}
		password = strings.TrimRight(string(b), "\r\n")
	}
	opts := &clickhouse.Options{
		Protocol: clickhouse.Native,
		Addr:     cfg.Addr,
		Auth: clickhouse.Auth{
			// No database here: the handshake fails if it does not exist yet.
			Username: cfg.Username,
			Password: password,
		},
		ClientInfo: clickhouse.ClientInfo{
			Products: []struct{ Name, Version string }{{Name: "correlatord"}},
		},
		DialTimeout: cfg.DialTimeout,
		// LZ4 is the native protocol's own block compression, which every
		// server version speaks.
		Compression: &clickhouse.Compression{Method: clickhouse.CompressionLZ4},
	}
	if cfg.TLS != nil {
		tlsCfg, err := config.NewTLSConfig(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("analytics: %s.tls: %w", configPath, err)
		}
		opts.TLS = tlsCfg
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("analytics: ClickHouse options: %w", err)
	}
	c := &Client{conn: conn, database: cfg.Database, addr: cfg.Addr, logger: logger}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, c.explain(err, cfg.Username)
	}
	var raw string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&raw); err != nil {
		_ = conn.Close()
		return nil, c.explain(fmt.Errorf("reading the server version: %w", err), cfg.Username)
	}
	v, err := ParseVersion(raw)
	if err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("analytics: %w", err)
	}
	c.version = v
	logger.Info("connected to ClickHouse",
		zap.Strings("addr", cfg.Addr),
		zap.String("server_version", raw),
		zap.String("database", cfg.Database),
		zap.Bool("tls", cfg.TLS != nil))
	return c, nil
}

// explain turns a connection failure into an error that tells the operator
// what to check.
func (c *Client) explain(err error, user string) error {
	addr := strings.Join(c.addr, ", ")
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		switch ex.Code {
		case 192, 193, 194, 516: // UNKNOWN_USER, WRONG_PASSWORD, REQUIRED_PASSWORD, AUTHENTICATION_FAILED
			return fmt.Errorf("analytics: ClickHouse at %s refused user %q: check %s.username and the password "+
				"(%s.password, %s.password_file or CORRELATOR_CLICKHOUSE_PASSWORD): %w",
				addr, user, configPath, configPath, configPath, err)
		}
		return fmt.Errorf("analytics: ClickHouse at %s answered with an error: %w", addr, err)
	}
	return fmt.Errorf("analytics: cannot reach ClickHouse at %s: check %s.addr (the native protocol port, "+
		"usually 9000, or 9440 with TLS), that the server is running and reachable, and %s.tls: %w",
		addr, configPath, configPath, err)
}

// Conn returns the underlying clickhouse-go connection pool.
func (c *Client) Conn() driver.Conn { return c.conn }

// ServerVersion returns the version the server reported when Open connected.
func (c *Client) ServerVersion() Version { return c.version }

// Database returns the name of the database holding the daemon's tables.
func (c *Client) Database() string { return c.database }

// Ping checks that ClickHouse answers (for /readyz).
func (c *Client) Ping(ctx context.Context) error {
	if err := c.conn.Ping(ctx); err != nil {
		return fmt.Errorf("analytics: ClickHouse ping: %w", err)
	}
	return nil
}

// Close closes every connection of the pool.
func (c *Client) Close() error { return c.conn.Close() }
