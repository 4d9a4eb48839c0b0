package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/correlatord/correlatord/ingest"
)

func TestGoodConfigs(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.good.yml")
	files = append(files, "../../examples/correlatord.yml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := loadConfig(f); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		})
	}
}

func TestFullConfigValues(t *testing.T) {
	cfg, err := loadConfig("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.GroupID != "correlatord-prod" || cfg.Kafka.IngestTopic != "alerts.prometheus" ||
		cfg.ClickHouse.Batch.MaxWait != 500*time.Millisecond || cfg.Ingest.DefaultSeverity != "minor" {
		t.Errorf("values not taken from the file: %+v", cfg)
	}
	// 0 is a value of its own (hand over at once), not "unset".
	if cfg.Kafka.FetchWait == nil || cfg.Kafka.FetchWaitOrDefault() != 0 {
		t.Errorf("kafka.fetch_wait: 0s became %v", cfg.Kafka.FetchWait)
	}
	withKafka, err := loadConfig("testdata/kafka-defaults.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if got := withKafka.Kafka.FetchWaitOrDefault(); got != ingest.DefaultFetchWait {
		t.Errorf("kafka.fetch_wait unset: got %s, want the default %s", got, ingest.DefaultFetchWait)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := loadConfig("")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Kafka.Enabled() || cfg.ClickHouse.Enabled() {
		t.Error("embedded defaults must run without Kafka and ClickHouse")
	}
	if cfg.DataDir != "data" || cfg.HTTP.MaxBodyBytes != 8<<20 || cfg.Ingest.MaxLabels != 128 {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
}

func TestBadConfigs(t *testing.T) {
	table := map[string]string{
		"unknown-field.bad.yml":    "field topcs not found",
		"bad-broker.bad.yml":       `kafka.brokers[0]: "localhost" is not host:port`,
		"dlq-consumed.bad.yml":     "kafka.dead_letter_topic: \"correlator.deadletter\" is also consumed",
		"bad-severity.bad.yml":     `ingest.default_severity: "urgent" is not one of`,
		"wrong-type.bad.yml":       "cannot unmarshal !!str `lots`",
		"two-docs.bad.yml":         "more than one YAML document",
		"clickhouse-batch.bad.yml": "clickhouse.batch.max_rows",
		"sasl.bad.yml":             `kafka.sasl.mechanism: "GSSAPI" is not one of`,
		"state-interval.bad.yml":   "kafka.state_interval: must be at least commit_interval (2s), got 1s",
		"update-interval.bad.yml":  "incidents.update_interval: must not be negative, got -1s",
		"fetch-wait.bad.yml":       "kafka.fetch_wait: must be between 0 and 5s, got 1m0s",
		"local-handoff.bad.yml":    "kafka.local_handoff_events: must be >= 0 (0 turns the hand-off off), got -1",
	}
	for file, want := range table {
		t.Run(file, func(t *testing.T) {
			_, err := loadConfig(filepath.Join("testdata", file))
			if err == nil {
				t.Fatalf("%s loaded without error", file)
			}
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
			if !strings.Contains(err.Error(), file) {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	// Every .bad.yml file is covered by the table above.
	files, _ := filepath.Glob("testdata/*.bad.yml")
	if len(files) != len(table) {
		t.Errorf("%d bad files in testdata, the table covers %d", len(files), len(table))
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	cfg, err := loadConfig("testdata/full.good.yml")
	if err != nil {
		t.Fatal(err)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"s3cret-ingest", "kafka-pass", "ch-pass"} {
		if strings.Contains(string(out), secret) {
			t.Errorf("marshalled config shows secret %q:\n%s", secret, out)
		}
	}
}

func TestSecretFromFileAndEnv(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "token")
	if err := os.WriteFile(pw, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "c.yml")
	if err := os.WriteFile(cfgFile, []byte("http:\n  bearer_token_file: "+pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := loadConfig(cfgFile)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTP.BearerTokenFile != pw {
		t.Fatalf("bearer_token_file = %q", cfg.HTTP.BearerTokenFile)
	}
}

func TestClickHousePasswordFromEnv(t *testing.T) {
	t.Setenv("CORRELATOR_CLICKHOUSE_PASSWORD", "from-env")
	cfg, err := parseConfig([]byte("clickhouse:\n  addr: [127.0.0.1:9000]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ClickHouse.Password != "from-env" {
		t.Errorf("password not taken from the environment")
	}
	cfg, err = parseConfig([]byte("clickhouse:\n  addr: [127.0.0.1:9000]\n  password: inline\n"))
	if err != nil || cfg.ClickHouse.Password != "inline" {
		t.Errorf("the file's password must win over the environment: %v", err)
	}
	cfg, err = parseConfig([]byte("clickhouse:\n  addr: [127.0.0.1:9000]\n  password_file: /run/secrets/ch\n"))
	if err != nil || cfg.ClickHouse.Password != "" {
		t.Errorf("with a password file the environment must not be used: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yml")
	for _, file := range files {
		if b, err := os.ReadFile(file); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parseConfig(data)
		if err != nil {
			return
		}
		// Whatever loads must be valid and stable under a second pass.
		if err := cfg.Validate(); err != nil {
			t.Fatalf("loaded config fails Validate: %v", err)
		}
	})
}
