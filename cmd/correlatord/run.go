package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/exporter-toolkit/web"
	"go.uber.org/zap"
	"go.uber.org/zap/exp/zapslog"
	"golang.org/x/sys/unix"

	"github.com/correlatord/correlatord/analytics"
	"github.com/correlatord/correlatord/cmdb"
	"github.com/correlatord/correlatord/incidents"
	"github.com/correlatord/correlatord/ingest"
	"github.com/correlatord/correlatord/ingest/logs"
)

type runOptions struct {
	listenAddress string
	// advertiseURL is where the other instances reach this one's API
	// (peers.go); "" leaves the API answering for this instance's
	// partitions only.
	advertiseURL string
	// webConfigFile is the Prometheus web configuration (TLS, client
	// certificates) of the HTTP server; "" serves plain HTTP.
	webConfigFile string
	// peerConfigFile is the HTTP client configuration for requests to
	// the other instances (--web.peer-config.file): their CA, and a client
	// certificate where they require one.
	peerConfigFile string
	// enablePprof serves Go's profiles under /debug/pprof/.
	enablePprof bool
	// listener, when set (tests), is used instead of listening on
	// listenAddress; ready is closed once the daemon serves.
	listener net.Listener
	ready    chan<- struct{}
	registry *prometheus.Registry
}

// daemonMetrics are the process-level metrics cmd owns.
type daemonMetrics struct {
	reloadOK   prometheus.Gauge
	reloadTime prometheus.Gauge
}

func newDaemonMetrics(reg prometheus.Registerer) *daemonMetrics {
	f := promauto.With(reg)
	f.NewGaugeVec(prometheus.GaugeOpts{
		Name: "correlator_build_info",
		Help: "A metric with a constant '1' value labelled by version, revision and goversion.",
	}, []string{"version", "revision", "goversion"}).WithLabelValues(version, revision(), runtime.Version()).Set(1)
	return &daemonMetrics{
		reloadOK: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_config_last_reload_successful",
			Help: "Whether the last configuration reload succeeded.",
		}),
		reloadTime: f.NewGauge(prometheus.GaugeOpts{
			Name: "correlator_config_last_reload_success_timestamp_seconds",
			Help: "Timestamp of the last successful configuration reload.",
		}),
	}
}

// runDaemon is `correlatord run`. It starts the components in dependency
// order and stops them in reverse: readiness off, HTTP and Kafka fetching
// stopped, the pipeline flushed to ClickHouse, offsets committed, then exit.
func runDaemon(ctx context.Context, flags commonFlags, opts runOptions, reload <-chan struct{}) (err error) {
	logger, cfg, err := flags.setup()
	if err != nil {
		return err
	}
	defer func() { _ = logger.Sync() }()
	gogc := applyGCDefault(os.LookupEnv)
	// The first line says what this instance is running on, so an operator
	// never wonders whether a config file was picked up.
	if flags.configFile == "" {
		logger.Info("starting correlatord on embedded defaults (no --config.file): HTTP ingest, no Kafka, no ClickHouse",
			zap.String("version", version), zap.String("listen_address", opts.listenAddress), zap.String("data_dir", cfg.DataDir),
			zap.String("gogc", gogc))
	} else {
		logger.Info("starting correlatord", zap.String("version", version), zap.String("config_file", flags.configFile),
			zap.String("listen_address", opts.listenAddress), zap.String("data_dir", cfg.DataDir),
			zap.Bool("kafka", cfg.Kafka.Enabled()), zap.Bool("clickhouse", cfg.ClickHouse.Enabled()), zap.String("gogc", gogc))
	}

	reg := opts.registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	dm := newDaemonMetrics(reg)
	dm.reloadOK.Set(1)
	dm.reloadTime.SetToCurrentTime()
	ingestMetrics := ingest.NewMetrics(reg)
	ready := newReadiness(reg, logger)

	// Cleanups run in reverse order of registration, each as soon as its
	// resource exists, so an error half-way through start-up leaks nothing.
	var cleanups []func() error
	defer func() {
		for i := len(cleanups) - 1; i >= 0; i-- {
			err = errors.Join(err, cleanups[i]())
		}
	}()

	unlock, err := lockDataDir(cfg.DataDir)
	if err != nil {
		return err
	}
	cleanups = append(cleanups, unlock)

	// Analytics: the sink that makes events durable when configured.
	var (
		sink     eventSink
		writer   *analytics.Writer[analytics.EventRow]
		chClient *analytics.Client
	)
	if cfg.ClickHouse.Enabled() {
		client, err := analytics.Open(ctx, cfg.ClickHouse, logger)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, client.Close)
		applied, err := analytics.Migrate(ctx, client, logger)
		if err != nil {
			return err
		}
		logger.Info("clickhouse schema up to date", zap.Strings("applied_now", applied), zap.String("server_version", client.ServerVersion().String()))
		writer = analytics.NewWriter(client, analytics.EventsTable(), cfg.ClickHouse.WriterOptions(), reg, logger)
		sink = writer
		ready.add("clickhouse", client.Ping)
		chClient = client
	} else {
		logger.Info("analytics off: no clickhouse.addr configured, events are not stored")
	}
	// CMDB: loaded before anything consumes, so no event is processed
	// against an empty topology by accident. A bad first load stops start-up;
	// a bad reload later keeps the running topology.
	var store *cmdb.Store
	var binder ciBinder
	if cfg.CMDB.Enabled() {
		store, err = cfg.CMDB.NewStore(nil, reg, logger)
		if err != nil {
			return err
		}
		if err := store.Reload(ctx); err != nil {
			return fmt.Errorf("cmdb: initial load: %w", err)
		}
		topo := store.Topology()
		logger.Info("cmdb loaded", zap.Int("cis", topo.Len()), zap.Int("relations", topo.NumRelations()),
			zap.Int("components", topo.Components()), zap.String("version", topo.Version()))
		binder = store
	} else {
		logger.Info("cmdb off: no cmdb.file or cmdb.url configured, events keep the CI their producer gave")
	}
	var topology func() *cmdb.Topology
	if store != nil {
		topology = store.Topology
	}
	stage, err := newRulesStage(cfg.Rules, topology, reg, logger)
	if err != nil {
		return err
	}
	kedb, err := incidents.NewKEDB(cfg.Incidents.KnownErrorsFile)
	if err != nil {
		return err
	}
	state := newStateStage(cfg, sink, stage, topology, nil, kedb, reg, logger)
	var records *recordWriters
	if chClient != nil {
		records = newRecordWriters(chClient, cfg.ClickHouse.WriterOptions(), reg, logger)
		state.records = records
	}

	// Ingest: with Kafka, the first stage (input topics -> keyed topic) and
	// the stateful stage (keyed topic -> rules, correlation, analytics);
	// without it, one in-process partition behind the HTTP endpoints.
	// API tokens (http.tokens, and http.bearer_token as an ingest-only
	// token): resolved before anything listens.
	auth, err := newAPIAuth(cfg.HTTP, reg, logger)
	if err != nil {
		return err
	}
	var (
		consumer    *ingest.Consumer
		partitioned *ingest.PartitionedConsumer
		inProcess   *inProcessHandler
		logConsumer *ingest.Consumer
		first       *keyer
		logStg      *logStage
		logCounts   *analytics.Writer[logs.CountRow]
		lagMonitor  *ingest.GroupLagMonitor
		forwarder   ingest.Forwarder
		peers       *peerRelay
	)
	peerClient, err := newPeerClient(opts.peerConfigFile)
	if err != nil {
		return err
	}
	if opts.peerConfigFile != "" && opts.advertiseURL == "" {
		logger.Warn("--web.peer-config.file is not used without --web.advertise-url")
	}
	if opts.advertiseURL != "" {
		if err := validAdvertiseURL(opts.advertiseURL); err != nil {
			return err
		}
		if !cfg.Kafka.Enabled() {
			logger.Warn("--web.advertise-url is not used without Kafka: one instance holds every record")
		}
	}
	if cfg.Kafka.Enabled() {
		kc := cfg.Kafka
		if *kc.CreateTopics {
			specs := []ingest.TopicSpec{{Name: kc.DeadLetterTopic}, {Name: kc.KeyedTopic},
				{Name: kc.StateTopic, Configs: ingest.ChangelogTopicConfigs}}
			for _, t := range kc.Topics {
				specs = append(specs, ingest.TopicSpec{Name: t})
			}
			if kc.ChangeTopic != "" {
				specs = append(specs, ingest.TopicSpec{Name: kc.ChangeTopic})
			}
			for _, t := range kc.LogTopics {
				specs = append(specs, ingest.TopicSpec{Name: t})
			}
			if cfg.Notify.Enabled() && cfg.Notify.Outbox.Type == "kafka" {
				specs = append(specs, ingest.TopicSpec{Name: cfg.Notify.Outbox.Topic})
			}
			if err := ingest.EnsureTopicSpecs(ctx, kc, specs, logger); err != nil {
				return err
			}
		}
		partitions, err := checkStatePartitions(ctx, kc)
		if err != nil {
			return err
		}
		reader, err := ingest.NewReader(kc, logger)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, reader.Close)
		dlq, err := ingest.NewWriter(kc, kc.DeadLetterTopic, logger)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, dlq.Close)
		keyed, err := ingest.NewPartitionWriter(kc, kc.KeyedTopic, logger)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, keyed.Close)
		changelog, err := ingest.NewChangelog(kc, kc.StateTopic, logger)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, changelog.Close)
		state.changelog = changelog
		commands, err := ingest.NewPartitionWriter(kc, kc.KeyedTopic, logger)
		if err != nil {
			return err
		}
		cleanups = append(cleanups, commands.Close)
		state.commands = &commandRouter{writer: commands}
		first = newKeyer(keyed, binder, newPartitionKeyer(topology, &cfg.Correlate), partitions, kc.MaxMessageBytes, ingestMetrics, logger)
		// The events the HTTP endpoints and the input topics' consumer
		// decode are theirs to give away: the stateful stage of this
		// process takes them from the hand-off instead of decoding them
		// again. The log stage keeps its own (firstOwn).
		var handoff *ingest.LocalHandoff
		firstOwn := ingest.Handler(first)
		if n := *kc.LocalHandoffEvents; n > 0 {
			handoff = ingest.NewLocalHandoff(n, localHandoffMaxAge, time.Now, reg)
			first.handoff = handoff
			firstOwn = handingOff{first}
		}
		if kc.IngestTopic != "" {
			producer, err := ingest.NewWriter(kc, kc.IngestTopic, logger)
			if err != nil {
				return err
			}
			cleanups = append(cleanups, producer.Close)
			forwarder = &ingest.KafkaForwarder{Writer: producer, Metrics: ingestMetrics}
		} else {
			// What the HTTP endpoints accept goes straight to the keyed
			// topic, bound and keyed as the first stage does; a request
			// is answered once the broker has it.
			forwarder = &ingest.PipelineForwarder{Handler: firstOwn}
		}
		cleanups = append(cleanups, func() error {
			// After the orderly Close at shutdown this returns at once; on
			// a failed start it stops the producer goroutine.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			first.Close(ctx)
			return nil
		})
		consumer = ingest.NewConsumer(reader, dlq, firstOwn, ingest.ConsumerOptions{
			Format:          kc.Format,
			MaxMessageBytes: kc.MaxMessageBytes,
			MaxBatchEvents:  kc.MaxBatchEvents,
			CommitInterval:  kc.CommitInterval,
			Policy:          cfg.policy(),
			Limits:          cfg.limits(),
			Defaults:        cfg.eventDefaults(),
		}, ingestMetrics, logger)
		if len(kc.LogTopics) > 0 {
			var counts *analytics.Writer[logs.CountRow]
			if chClient != nil {
				counts = analytics.NewWriter(chClient, analytics.LogCountsTable(), cfg.ClickHouse.WriterOptions(), reg, logger)
				logCounts = counts
			}
			var lb logs.Binder
			if binder != nil {
				lb = binder
			}
			if logStg, err = newLogStage(cfg, lb, first, counts, logs.NewMetrics(reg), logger); err != nil {
				return err
			}
			lc := kc
			lc.Topics, lc.GroupID = kc.LogTopics, kc.GroupID+"-logs"
			lr, err := ingest.NewReader(lc, logger)
			if err != nil {
				return err
			}
			cleanups = append(cleanups, lr.Close)
			logConsumer = ingest.NewConsumer(lr, dlq, first, ingest.ConsumerOptions{
				MaxMessageBytes: kc.MaxMessageBytes,
				MaxBatchEvents:  kc.MaxBatchEvents,
				CommitInterval:  kc.CommitInterval,
				Decode:          logStg.decode,
			}, ingestMetrics, logger)
			logger.Info("log ingest on", zap.Strings("log_topics", kc.LogTopics), zap.String("group_id", lc.GroupID))
		}
		partitioned = ingest.NewPartitionedConsumer(kc, ingest.PartitionedOptions{
			Topic:          kc.KeyedTopic,
			GroupID:        kc.StateGroupID,
			MaxBatchEvents: kc.MaxBatchEvents,
			CommitInterval: kc.CommitInterval,
			StateInterval:  kc.StateInterval,
			FetchWait:      kc.FetchWaitOrDefault(),
			Limits:         cfg.limits(),
			Defaults:       cfg.eventDefaults(),
			MemberData:     memberDataOf(opts.advertiseURL),
			Handoff:        handoff,
		}, state.open, dlq, ingestMetrics, reg, logger)
		if opts.advertiseURL != "" {
			source := &groupPeers{self: opts.advertiseURL, members: partitioned.Members, now: time.Now, logger: logger}
			peers = newPeerRelay(source, opts.advertiseURL, peerClient, reg, logger)
		}
		lagGroups := map[string][]string{kc.GroupID: kc.Topics}
		if len(kc.LogTopics) > 0 {
			lagGroups[kc.GroupID+"-logs"] = kc.LogTopics
		}
		if cfg.Notify.Enabled() && cfg.Notify.Outbox.Type == "kafka" {
			lagGroups[cfg.Notify.Outbox.GroupID] = []string{cfg.Notify.Outbox.Topic}
		}
		if lagMonitor, err = ingest.NewGroupLagMonitor(kc, lagGroups, reg, logger); err != nil {
			return err
		}
		ready.add("kafka", func(ctx context.Context) error { return ingest.PingKafka(ctx, kc) })
		logger.Info("kafka on", zap.Strings("brokers", kc.Brokers), zap.Strings("topics", kc.Topics),
			zap.String("group_id", kc.GroupID), zap.String("keyed_topic", kc.KeyedTopic), zap.String("state_topic", kc.StateTopic),
			zap.String("state_group_id", kc.StateGroupID), zap.String("dead_letter_topic", kc.DeadLetterTopic))
	}
	// Notifications: the outbox the partitions write, and its runner.
	var runOutbox func(context.Context) error
	if cfg.Notify.Enabled() {
		runOutbox, err = setUpNotifications(cfg, state, reg, logger, &cleanups)
		if err != nil {
			return err
		}
	}
	if !cfg.Kafka.Enabled() {
		// One partition per core, keyed as the keyed topic would be; the
		// handler binds, so the partitions' pipelines do not.
		n := runtime.GOMAXPROCS(0)
		inProcess = &inProcessHandler{binder: binder, keys: newPartitionKeyer(topology, &cfg.Correlate), sink: sink}
		for p := range n {
			w, _, err := state.open(ctx, p, 0)
			if err != nil {
				return err
			}
			inProcess.workers = append(inProcess.workers, w.(*partitionWorker))
		}
		forwarder = &ingest.PipelineForwarder{Handler: inProcess}
		logger.Info("kafka off: HTTP ingest feeds in-process partitions; correlation state is not kept across restarts", zap.Int("partitions", n))
	}

	httpIngest := ingest.NewHTTPHandler(ingest.HTTPOptions{
		MaxBodyBytes: cfg.HTTP.MaxBodyBytes,
		Timeout:      cfg.HTTP.Timeout,
		Policy:       cfg.policy(),
		Limits:       cfg.limits(),
		Defaults:     cfg.eventDefaults(),
		Authorize:    auth.Ingest,
	}, forwarder, "", ingestMetrics, logger)
	mux := newMux(reg, ready, func(m *http.ServeMux) {
		if opts.enablePprof {
			// Profiles expose internals (and cost CPU while taken): off
			// unless asked for, and then behind a read token when auth is
			// on.
			m.Handle("/debug/pprof/", auth.require(roleRead, http.HandlerFunc(pprof.Index)))
			m.Handle("/debug/pprof/profile", auth.require(roleRead, http.HandlerFunc(pprof.Profile)))
			m.Handle("/debug/pprof/trace", auth.require(roleRead, http.HandlerFunc(pprof.Trace)))
		}
		httpIngest.Register(m)
		registerAPI(m, state, peers, auth, reg, logger)
	})

	ln := opts.listener
	if ln == nil {
		ln, err = net.Listen("tcp", opts.listenAddress)
		if err != nil {
			return fmt.Errorf("--web.listen-address: %w", err)
		}
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}

	// Start. Each goroutine reports a fatal error on errc. It holds more
	// errors than there are goroutines that can fail (writer, rules, change
	// consumer, cmdb, Kafka consumer, HTTP server), so none of them blocks
	// once the loop below has stopped reading it.
	errc := make(chan error, 16)
	var wg sync.WaitGroup
	goRun := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				errc <- fmt.Errorf("%s: %w", name, err)
			}
		}()
	}
	readyCtx, stopReady := context.WithCancel(context.Background())
	defer stopReady()
	go ready.run(readyCtx)

	writerCtx, stopWriter := context.WithCancel(context.Background())
	defer stopWriter()
	if writer != nil {
		goRun("clickhouse writer", func() error { return writer.Run(writerCtx) })
	}
	if records != nil {
		goRun("clickhouse incident writers", func() error { return records.run(writerCtx) })
	}
	if logCounts != nil {
		goRun("clickhouse log counts writer", func() error { return logCounts.Run(writerCtx) })
	}
	cmdbReload := make(chan struct{}, 1)
	storeCtx, stopStore := context.WithCancel(context.Background())
	defer stopStore()
	if logStg != nil {
		goRun("log timers", func() error { return logStg.run(storeCtx) })
	}
	if lagMonitor != nil {
		goRun("kafka lag", func() error { return lagMonitor.Run(storeCtx, 10*time.Second) })
	}
	goRun("rules", func() error { return stage.manager.Run(storeCtx) })
	if cfg.Kafka.Enabled() && cfg.Kafka.ChangeTopic != "" {
		changes := newChangeConsumer(cfg.Kafka, stage.changes, reg, logger)
		goRun("change consumer", func() error { return changes.Run(storeCtx) })
	}
	if runOutbox != nil {
		goRun("notifications", func() error { return runOutbox(storeCtx) })
	}
	if inProcess != nil {
		for _, w := range inProcess.workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				runIdle(storeCtx, w, logger)
			}()
		}
	}
	if store != nil {
		goRun("cmdb", func() error { return store.Run(storeCtx, cmdbReload) })
		if chClient != nil {
			source := cfg.CMDB.File + cfg.CMDB.URL // one of them is set
			wg.Add(1)
			go func() {
				defer wg.Done()
				snapshotTopologies(storeCtx, chClient, store, source, logger)
			}()
		}
	}
	consumerCtx, stopConsumer := context.WithCancel(context.Background())
	defer stopConsumer()
	consumerDone := make(chan struct{})
	if consumer != nil {
		go func() {
			defer close(consumerDone)
			if err := consumer.Run(consumerCtx); err != nil {
				errc <- fmt.Errorf("kafka consumer: %w", err)
			}
		}()
	} else {
		close(consumerDone)
	}
	logsDone := make(chan struct{})
	if logConsumer != nil {
		go func() {
			defer close(logsDone)
			if err := logConsumer.Run(consumerCtx); err != nil {
				errc <- fmt.Errorf("log consumer: %w", err)
			}
		}()
	} else {
		close(logsDone)
	}
	partitionedCtx, stopPartitioned := context.WithCancel(context.Background())
	defer stopPartitioned()
	partitionedDone := make(chan struct{})
	if partitioned != nil {
		go func() {
			defer close(partitionedDone)
			if err := partitioned.Run(partitionedCtx); err != nil {
				errc <- fmt.Errorf("stateful stage: %w", err)
			}
		}()
	} else {
		close(partitionedDone)
	}
	serverDone := make(chan struct{})
	go func() {
		defer close(serverDone)
		// exporter-toolkit serves TLS from the standard Prometheus web
		// configuration file, reloaded at every connection.
		webLog := slog.New(zapslog.NewHandler(logger.Core())).With("component", "web")
		webConfig := opts.webConfigFile
		if err := web.Serve(ln, server, &web.FlagConfig{WebConfigFile: &webConfig}, webLog); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("http server: %w", err)
		}
	}()
	logger.Info("serving", zap.String("address", ln.Addr().String()))
	if opts.ready != nil {
		close(opts.ready)
	}

	var runErr error
loop:
	for {
		select {
		case <-ctx.Done():
			logger.Info("shutdown requested")
			break loop
		case err := <-errc:
			logger.Error("component failed; shutting down", zap.Error(err))
			runErr = err
			break loop
		case <-reload:
			reloadConfig(flags.configFile, cfg, auth, dm, logger)
			select {
			case cmdbReload <- struct{}{}:
			default: // one is pending already
			}
			// A bad rule file keeps the running rules; the manager logs and
			// counts it.
			_ = stage.manager.Reload()
			if err := kedb.Reload(); err != nil {
				logger.Error("known-error database reload failed; keeping the loaded entries", zap.Error(err))
			} else if cfg.Incidents.KnownErrorsFile != "" {
				logger.Info("known-error database reloaded", zap.Int("entries", kedb.Len()))
			}
		}
	}

	// Stop in reverse order of the data flow.
	ready.stopping.Store(true)
	if cfg.ShutdownDelay > 0 {
		logger.Info("readiness off; waiting before stopping", zap.Duration("shutdown_delay", cfg.ShutdownDelay))
		time.Sleep(cfg.ShutdownDelay)
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// HTTP requests in flight wait for durability, so the writer still runs.
	if err := server.Shutdown(shutdownCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("http shutdown: %w", err))
	}
	<-serverDone
	stopConsumer()
	<-consumerDone
	<-logsDone
	if first != nil {
		first.Close(shutdownCtx) // what the consumers handed over reaches the keyed topic
	}
	// The stateful stage checkpoints every partition on the way out (rows,
	// state, offsets), so the writer still runs.
	stopPartitioned()
	<-partitionedDone
	stopStore()
	stopWriter() // the writer flushes what it holds, bounded by its own timeout
	wg.Wait()
	if logConsumer != nil {
		if err := logConsumer.Commit(shutdownCtx); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("final log offset commit: %w", err))
		}
	}
	if consumer != nil {
		if err := consumer.Commit(shutdownCtx); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("final offset commit: %w", err))
		}
		if n := consumer.Uncommitted(); n > 0 {
			logger.Warn("messages left uncommitted; they will be redelivered", zap.Int("messages", n))
		}
	}
	stopReady()
	// Drain errors reported while stopping (the writer's final flush).
	for {
		select {
		case err := <-errc:
			runErr = errors.Join(runErr, err)
			continue
		default:
		}
		break
	}
	logger.Info("stopped")
	return runErr
}

// reloadConfig applies what can change at run time (log level, API and
// ingest tokens) and says which other changes need a restart. A bad file
// keeps the running configuration.
func reloadConfig(path string, running *Config, auth *apiAuth, dm *daemonMetrics, logger *zap.Logger) {
	if path == "" {
		logger.Info("SIGHUP: no --config.file, nothing to reload")
		return
	}
	next, err := loadConfig(path)
	if err != nil {
		dm.reloadOK.Set(0)
		logger.Error("configuration reload failed; keeping the running configuration", zap.Error(err))
		return
	}
	if err := auth.Reload(next.HTTP); err != nil {
		dm.reloadOK.Set(0)
		logger.Error("configuration reload failed; keeping the running configuration", zap.Error(err))
		return
	}
	// Everything but the tokens is read once at start; say so rather than
	// pretend a changed broker list took effect.
	a, b := *running, *next
	a.HTTP.BearerToken, a.HTTP.BearerTokenFile, a.HTTP.Tokens = "", "", nil
	b.HTTP.BearerToken, b.HTTP.BearerTokenFile, b.HTTP.Tokens = "", "", nil
	if !reflect.DeepEqual(a, b) {
		logger.Warn("configuration changes other than http.bearer_token and http.tokens take effect at the next restart")
	}
	dm.reloadOK.Set(1)
	dm.reloadTime.SetToCurrentTime()
	logger.Info("configuration reloaded")
}

// lockDataDir creates the data directory and takes an exclusive lock in it,
// so two daemons never share (and corrupt) one state directory.
func lockDataDir(dir string) (func() error, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("data_dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("data_dir %s is in use by another correlatord (lock: %w)", dir, err)
	}
	return func() error {
		_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
		return f.Close()
	}, nil
}
