// Command correlatord ingests monitoring alerts and logs, correlates them
// against the CMDB topology into incidents and stores analytics in ClickHouse.
//
// main only parses flags, installs signal handling and calls the chosen
// subcommand; everything else is in run.go and the packages it wires.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
)

func main() {
	os.Exit(realMain(os.Args[1:]))
}

// realMain returns the process exit code, so tests can drive the CLI.
func realMain(args []string) int {
	app := kingpin.New("correlatord", "Topology-aware alert correlation into ITIL incidents.")
	app.HelpFlag.Short('h')

	var common commonFlags
	common.register(app)

	runCmd := app.Command("run", "Run the daemon (the default).").Default()
	var runFlags runOptions
	runCmd.Flag("web.listen-address", "Address of the HTTP API, ingest endpoints, /metrics and health checks.").
		Default(defaultListenAddress).StringVar(&runFlags.listenAddress)
	runCmd.Flag("web.advertise-url", "URL at which the other instances reach this one's API (http://10.0.0.5:9470). With Kafka and several instances, set it on each: then any instance answers the incidents API for all of them.").
		StringVar(&runFlags.advertiseURL)
	runCmd.Flag("web.config.file", "Prometheus web configuration file for TLS (tls_server_config: cert_file, key_file, client_ca_file, client_auth_type); see docs/CONFIG.md.").
		StringVar(&runFlags.webConfigFile)
	runCmd.Flag("web.peer-config.file", "Prometheus HTTP client configuration file for requests to the other instances (tls_config: ca_file, and cert_file and key_file where they require client certificates); see docs/CONFIG.md.").
		StringVar(&runFlags.peerConfigFile)
	runCmd.Flag("web.enable-pprof", "Serve Go's CPU and heap profiles under /debug/pprof/ (a read token is needed when auth is on).").
		BoolVar(&runFlags.enablePprof)

	replayCmd := app.Command("replay", "Run a JSON-lines file of events through the pipeline on event time and write what it produced.")
	var replayFlags replayOptions
	replayCmd.Flag("events", "JSON-lines file of canonical events.").Required().StringVar(&replayFlags.eventsFile)
	replayCmd.Flag("out", "Incidents output (one JSON object per incident, open or resolved); - is standard output.").Default("-").StringVar(&replayFlags.outFile)
	replayCmd.Flag("events-out", "Also write every event with the rules stage's decision (JSON lines).").StringVar(&replayFlags.eventsOut)
	replayCmd.Flag("cmdb", "CMDB topology file events are bound against (overrides cmdb.file of the configuration).").StringVar(&replayFlags.cmdbFile)
	replayCmd.Flag("cmdb.format", "Format of --cmdb: native, servicenow, backstage or netbox.").Default("native").StringVar(&replayFlags.cmdbFormat)

	replayCmd.Flag("rules", "Rule file or folder (repeatable; overrides rules.files of the configuration).").StringsVar(&replayFlags.rulesFiles)
	replayCmd.Flag("problems-out", "Also write the problem records raised (JSON lines).").StringVar(&replayFlags.problemsOut)
	replayCmd.Flag("partitions", "Partition the events as the daemon's keyed topic does, one pipeline each (set it to the keyed topic's partition count to compute what the instances compute).").Default("1").IntVar(&replayFlags.partitions)

	rulesCmd := app.Command("rules", "Rule file tools.")
	rulesTestCmd := rulesCmd.Command("test", "Run rule unit-test files (input events, expected class, outcome and labels); exit 1 on a failure.")
	var rulesTestFlags, rulesCheckFlags rulesFileOptions
	rulesTestCmd.Arg("file", "Rule test files.").Required().StringsVar(&rulesTestFlags.files)
	rulesCheckCmd := rulesCmd.Command("check", "Validate rule files; exit 1 on an error.")
	rulesCheckCmd.Arg("file", "Rule files or folders.").Required().StringsVar(&rulesCheckFlags.files)

	scenarioCmd := app.Command("scenario", "Write a generated estate, its alert storm and the ground truth to a folder, for replay and evaluate.")
	var scenarioFlags scenarioOptions
	scenarioCmd.Flag("out-dir", "Folder for cmdb.json, events.jsonl and truth.json.").Required().StringVar(&scenarioFlags.outDir)
	scenarioCmd.Flag("seed", "Random seed.").Default("1").Uint64Var(&scenarioFlags.seed)
	scenarioCmd.Flag("cis", "CIs in the estate.").Default("2000").IntVar(&scenarioFlags.cis)
	scenarioCmd.Flag("faults", "Injected faults.").Default("50").IntVar(&scenarioFlags.faults)

	evaluateCmd := app.Command("evaluate", "Score replay's incidents against a scenario's ground truth.")
	var evaluateFlags evaluateOptions
	evaluateCmd.Flag("truth", "truth.json written by correlatord scenario.").Required().StringVar(&evaluateFlags.truth)
	evaluateCmd.Flag("incidents", "Incidents written by correlatord replay --out.").Required().StringVar(&evaluateFlags.incidents)
	evaluateCmd.Flag("min-f1", "Fail when grouping F1 is under this.").Default("0").Float64Var(&evaluateFlags.minF1)
	evaluateCmd.Flag("min-rca", "Fail when root-cause accuracy is under this.").Default("0").Float64Var(&evaluateFlags.minRCA)

	cmdbCmd := app.Command("cmdb", "CMDB tools.")
	cmdbCheckCmd := cmdbCmd.Command("check", "Validate a CMDB file and print counts, components and warnings; exit 1 on errors.")
	var cmdbFlags cmdbCheckOptions
	cmdbCheckCmd.Arg("file", "CMDB file.").Required().StringVar(&cmdbFlags.file)
	cmdbCheckCmd.Flag("format", "Format: native, servicenow, backstage or netbox.").Default("native").StringVar(&cmdbFlags.format)

	logparseCmd := app.Command("logparse", "Mine log templates from a file offline and write LineId,EventId,EventTemplate CSV, like the Loghub benchmark's structured output.")
	var logparseFlags logparseOptions
	logparseCmd.Flag("in", "Log file; - is standard input.").Required().StringVar(&logparseFlags.in)
	logparseCmd.Flag("log-format", "Loghub header format, e.g. '<Date> <Time> <Level> <Component>: <Content>': only <Content> is mined, lines that do not match are skipped and counted. Without it the whole line is mined.").StringVar(&logparseFlags.logFormat)
	logparseCmd.Flag("out", "CSV output; - is standard output.").Required().StringVar(&logparseFlags.out)

	migrateCmd := app.Command("migrate", "Apply the ClickHouse schema migrations and exit.")
	versionCmd := app.Command("version", "Print the version and exit.")

	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(os.Stderr, "correlatord: %v (try --help)\n", err)
		return 2
	}

	// SIGTERM and SIGINT cancel the context; SIGHUP asks for a reload. SIGHUP
	// is registered before the first config load, so a reload sent during
	// start-up is not lost.
	reload := make(chan struct{}, 1)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			select {
			case reload <- struct{}{}:
			default: // a reload is already pending
			}
		}
	}()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	switch cmd {
	case runCmd.FullCommand():
		err = runDaemon(ctx, common, runFlags, reload)
	case replayCmd.FullCommand():
		err = runReplay(ctx, common, replayFlags)
	case rulesTestCmd.FullCommand():
		err = runRulesTest(os.Stdout, rulesTestFlags)
	case rulesCheckCmd.FullCommand():
		err = runRulesCheck(os.Stdout, rulesCheckFlags)
	case scenarioCmd.FullCommand():
		err = runScenario(os.Stdout, scenarioFlags)
	case evaluateCmd.FullCommand():
		err = runEvaluate(os.Stdout, evaluateFlags)
	case cmdbCheckCmd.FullCommand():
		err = runCmdbCheck(os.Stdout, cmdbFlags)
	case logparseCmd.FullCommand():
		err = runLogparse(os.Stderr, logparseFlags)
	case migrateCmd.FullCommand():
		err = runMigrate(ctx, common)
	case versionCmd.FullCommand():
		fmt.Println(versionString())
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "correlatord: %v\n", err)
		return 1
	}
	return 0
}

// commonFlags are accepted by every subcommand.
type commonFlags struct {
	configFile string
	logLevel   string
	logFormat  string
}

func (c *commonFlags) register(app *kingpin.Application) {
	app.Flag("config.file", "YAML configuration file. Without it, embedded defaults: HTTP ingest only, no Kafka, no ClickHouse.").
		StringVar(&c.configFile)
	app.Flag("log.level", "Only log messages with this severity or above: debug, info, warn, error.").
		Default("info").EnumVar(&c.logLevel, "debug", "info", "warn", "error")
	app.Flag("log.format", "Log format: auto (console on a terminal, else JSON), json or console.").
		Default("auto").EnumVar(&c.logFormat, "auto", "json", "console")
}
