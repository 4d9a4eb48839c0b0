// Command loadgen produces a synthetic alert storm into Kafka or over HTTP,
// for load tests and the demo. Everything it sends is deterministic for a
// given --seed, so runs can be compared.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/segmentio/kafka-go"

	"github.com/correlatord/correlatord/ingest"
)

type options struct {
	brokers      []string
	topic        string
	httpURL      string
	token        string
	format       string
	events       int
	hosts        int
	perMessage   int
	rate         float64
	workers      int
	resolved     float64
	malformed    int
	seed         uint64
	start        string
	acks         int
	partitions   int
	sinkListen   string
	deleteTopics []string
	renderAhead  bool
}

func main() {
	var o options
	app := kingpin.New("loadgen", "Produce a synthetic alert storm into Kafka or over HTTP.")
	app.Flag("kafka.brokers", "Kafka bootstrap brokers (host:port). Either this or --http.").StringsVar(&o.brokers)
	app.Flag("topic", "Kafka topic.").Default("correlator.alerts").StringVar(&o.topic)
	app.Flag("http", "URL to POST to instead of Kafka, e.g. http://127.0.0.1:9470/api/v1/alerts.").StringVar(&o.httpURL)
	app.Flag("token", "Bearer token for --http.").StringVar(&o.token)
	app.Flag("format", "Payload format: events (canonical JSON lines), webhook (Alertmanager webhook) or am-v2 (Alertmanager API v2 alert list, what Prometheus posts to Alertmanager).").Default("events").EnumVar(&o.format, "events", "webhook", "am-v2")
	app.Flag("events", "Number of events to send.").Default("100000").IntVar(&o.events)
	app.Flag("hosts", "Number of distinct hosts the alerts are spread over.").Default("2000").IntVar(&o.hosts)
	app.Flag("per-message", "Events per Kafka message or HTTP request.").Default("1").IntVar(&o.perMessage)
	app.Flag("rate", "Events per second (0: as fast as possible).").Default("0").Float64Var(&o.rate)
	app.Flag("workers", "Concurrent producers.").Default("4").IntVar(&o.workers)
	app.Flag("resolved", "Share of events that resolve an earlier alert.").Default("0.2").Float64Var(&o.resolved)
	app.Flag("malformed", "Number of malformed messages to mix in (for dead-letter tests).").Default("0").IntVar(&o.malformed)
	app.Flag("render-ahead", "Render every message before the clock starts (about 330 B per alert held in memory), so that while the rate is measured the generator's JSON encoding takes no CPU from the server under test. --no-render-ahead renders each message just before sending it.").Default("true").BoolVar(&o.renderAhead)
	app.Flag("seed", "Random seed.").Default("1").Uint64Var(&o.seed)
	app.Flag("start", "Event time of the first event (RFC 3339); events are 1 ms apart. Default: the storm ends now.").StringVar(&o.start)
	app.Flag("acks", "Kafka required acks: -1 all, 1 leader.").Default("-1").IntVar(&o.acks)
	app.Flag("partitions", "Partitions of the topic when loadgen creates it.").Default("4").IntVar(&o.partitions)
	app.Flag("sink.listen", "Run as a webhook receiver instead: count the distinct storm alerts in the Alertmanager notifications POSTed to this address; GET /stats reports them.").StringVar(&o.sinkListen)
	app.Flag("delete-topics", "Delete these topics from --kafka.brokers instead (repeatable; the benchmark scripts clean up with it): the topics of finished runs take the broker's disk and slow the runs after them.").StringsVar(&o.deleteTopics)
	kingpin.MustParse(app.Parse(os.Args[1:]))
	if len(o.deleteTopics) > 0 {
		if err := deleteTopics(context.Background(), o.brokers, o.deleteTopics); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if o.sinkListen != "" {
		if err := runSink(o.sinkListen); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen:", err)
			os.Exit(1)
		}
		return
	}
	if (len(o.brokers) == 0) == (o.httpURL == "") {
		fmt.Fprintln(os.Stderr, "loadgen: give exactly one of --kafka.brokers and --http")
		os.Exit(2)
	}
	if o.perMessage < 1 || o.events < 1 || o.hosts < 1 || o.workers < 1 {
		fmt.Fprintln(os.Stderr, "loadgen: --events, --hosts, --per-message and --workers must be > 0")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

var alertnames = []string{"HostDown", "HighCPU", "DiskFull", "ServiceUnavailable", "HighLatency", "PacketLoss", "DatabaseDown", "MemoryPressure"}
var severities = []string{"critical", "major", "minor", "warning", "critical", "major"}

// storm generates events deterministically: event i always has the same
// content for the same seed and start.
type storm struct {
	o     options
	start time.Time
}

type alert struct {
	labels   map[string]string
	resolved bool
	at       time.Time
}

func (s *storm) alert(i int) alert {
	r := rand.New(rand.NewPCG(s.o.seed, uint64(i)))
	host := r.IntN(s.o.hosts)
	name := alertnames[r.IntN(len(alertnames))]
	return alert{
		labels: map[string]string{
			"alertname": name,
			"instance":  "host-" + strconv.Itoa(host) + ":9100",
			"job":       "node",
			"severity":  severities[r.IntN(len(severities))],
			"site":      "dc" + strconv.Itoa(host%4+1),
			"storm_seq": strconv.Itoa(i), // makes every event a distinct alert
		},
		resolved: r.Float64() < s.o.resolved,
		at:       s.start.Add(time.Duration(i) * time.Millisecond),
	}
}

type canonical struct {
	Time        time.Time         `json:"time"`
	Source      string            `json:"source"`
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	Summary     string            `json:"summary"`
}

type amAlert struct {
	Status      string            `json:"status"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      time.Time         `json:"endsAt"`
}

// payload renders events [from, to) as one message body.
func (s *storm) payload(from, to int) []byte {
	var b bytes.Buffer
	if s.o.format == "events" {
		enc := json.NewEncoder(&b)
		for i := from; i < to; i++ {
			a := s.alert(i)
			status := "firing"
			if a.resolved {
				status = "resolved"
			}
			_ = enc.Encode(canonical{Time: a.at, Source: "loadgen", Status: status, Labels: a.labels,
				Annotations: map[string]string{"description": "synthetic storm event"},
				Summary:     a.labels["alertname"] + " on " + a.labels["instance"]})
		}
		return b.Bytes()
	}
	if s.o.format == "am-v2" {
		type postable struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
			StartsAt    time.Time         `json:"startsAt"`
			EndsAt      *time.Time        `json:"endsAt,omitempty"`
		}
		list := make([]postable, 0, to-from)
		for i := from; i < to; i++ {
			a := s.alert(i)
			p := postable{Labels: a.labels, StartsAt: a.at,
				Annotations: map[string]string{"summary": a.labels["alertname"] + " on " + a.labels["instance"]}}
			if a.resolved {
				end := a.at
				p.EndsAt = &end
			}
			list = append(list, p)
		}
		_ = json.NewEncoder(&b).Encode(list)
		return b.Bytes()
	}
	alerts := make([]amAlert, 0, to-from)
	for i := from; i < to; i++ {
		a := s.alert(i)
		am := amAlert{Status: "firing", Labels: a.labels, StartsAt: a.at,
			Annotations: map[string]string{"summary": a.labels["alertname"] + " on " + a.labels["instance"]}}
		if a.resolved {
			am.Status, am.EndsAt = "resolved", a.at
		}
		alerts = append(alerts, am)
	}
	_ = json.NewEncoder(&b).Encode(map[string]any{"version": "4", "groupKey": "{}:{}", "status": "firing",
		"receiver": "correlatord", "alerts": alerts, "groupLabels": map[string]string{}, "commonLabels": map[string]string{},
		"commonAnnotations": map[string]string{}, "externalURL": "http://loadgen", "truncatedAlerts": 0})
	return b.Bytes()
}

type sender interface {
	send(ctx context.Context, bodies [][]byte, keys []string) error
	close() error
}

type kafkaSender struct{ w *kafka.Writer }

func (k *kafkaSender) send(ctx context.Context, bodies [][]byte, keys []string) error {
	msgs := make([]kafka.Message, len(bodies))
	for i := range bodies {
		msgs[i] = kafka.Message{Key: []byte(keys[i]), Value: bodies[i]}
	}
	return k.w.WriteMessages(ctx, msgs...)
}
func (k *kafkaSender) close() error { return k.w.Close() }

type httpSender struct {
	url, token string
	client     *http.Client
}

func (h *httpSender) send(ctx context.Context, bodies [][]byte, _ []string) error {
	for _, b := range bodies {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		if h.token != "" {
			req.Header.Set("Authorization", "Bearer "+h.token)
		}
		resp, err := h.client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			return fmt.Errorf("POST %s: %s", h.url, resp.Status)
		}
	}
	return nil
}
func (h *httpSender) close() error { return nil }

func run(ctx context.Context, o options) error {
	// Events are 1 ms apart; by default the storm ends now, so no event is
	// dated in the future (ingest rejects events past max_future_skew).
	start := time.Now().UTC().Add(-time.Duration(o.events) * time.Millisecond)
	if o.start != "" {
		t, err := time.Parse(time.RFC3339Nano, o.start)
		if err != nil {
			return fmt.Errorf("--start: %w", err)
		}
		start = t
	}
	s := &storm{o: o, start: start}
	var snd sender
	if o.httpURL != "" {
		snd = &httpSender{url: o.httpURL, token: o.token, client: &http.Client{Timeout: time.Minute,
			Transport: &http.Transport{MaxIdleConnsPerHost: o.workers}}}
	} else {
		if err := ensureTopic(ctx, o); err != nil {
			return err
		}
		snd = &kafkaSender{w: &kafka.Writer{Addr: kafka.TCP(o.brokers...), Topic: o.topic, Balancer: &kafka.Hash{},
			RequiredAcks: kafka.RequiredAcks(o.acks), BatchSize: 2000, BatchBytes: 1 << 20, BatchTimeout: 5 * time.Millisecond,
			AllowAutoTopicCreation: true, Compression: kafka.Lz4}}
	}
	defer snd.close()

	messages := (o.events + o.perMessage - 1) / o.perMessage
	render := func(m int) ([]byte, string) {
		from, to := m*o.perMessage, min((m+1)*o.perMessage, o.events)
		return s.payload(from, to), "host-" + strconv.Itoa(m%o.hosts)
	}
	if o.renderAhead {
		// On a machine shared with the server, encoding 500,000 alerts took
		// about a third of the CPU correlatord spent accepting them, which
		// slowed the server being measured, not the generator.
		bodies, keys := renderAll(messages, o.workers, render)
		render = func(m int) ([]byte, string) { return bodies[m], keys[m] }
	}
	var next, sent atomic.Int64
	const chunk = 200 // messages per send call
	began := time.Now()
	var wg sync.WaitGroup
	errc := make(chan error, o.workers)
	for range o.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				first := int(next.Add(chunk)) - chunk
				if first >= messages {
					return
				}
				last := min(first+chunk, messages)
				bodies := make([][]byte, 0, last-first)
				keys := make([]string, 0, last-first)
				for m := first; m < last; m++ {
					from := m * o.perMessage
					if o.rate > 0 { // pace by the event index
						due := began.Add(time.Duration(float64(from) / o.rate * float64(time.Second)))
						if d := time.Until(due); d > 0 {
							time.Sleep(d)
						}
					}
					body, key := render(m)
					bodies = append(bodies, body)
					keys = append(keys, key)
				}
				if err := snd.send(ctx, bodies, keys); err != nil {
					errc <- err
					return
				}
				sent.Add(int64(min(last*o.perMessage, o.events) - first*o.perMessage))
			}
		}()
	}
	wg.Wait()
	if o.malformed > 0 {
		bodies, keys := make([][]byte, o.malformed), make([]string, o.malformed)
		for i := range bodies {
			bodies[i] = []byte(`{"time": "not a time", "labels": {"alertname": 42}}`)
			keys[i] = "malformed"
		}
		if err := snd.send(ctx, bodies, keys); err != nil {
			return err
		}
	}
	elapsed := time.Since(began)
	select {
	case err := <-errc:
		return err
	default:
	}
	n := sent.Load()
	fmt.Printf("loadgen: sent %d events in %d messages (+%d malformed) in %s: %.0f events/s\n",
		n, messages, o.malformed, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds())
	return ctx.Err()
}

// renderAll renders messages [0, n) with the given number of goroutines.
func renderAll(n, workers int, render func(int) ([]byte, string)) ([][]byte, []string) {
	bodies, keys := make([][]byte, n), make([]string, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for m := int(next.Add(1)) - 1; m < n; m = int(next.Add(1)) - 1 {
				bodies[m], keys[m] = render(m)
			}
		})
	}
	wg.Wait()
	return bodies, keys
}

// ensureTopic creates the topic unless it exists: relying on auto-creation
// fails the first produce while the broker elects a leader.
func ensureTopic(ctx context.Context, o options) error {
	client := &kafka.Client{Addr: kafka.TCP(o.brokers...), Timeout: 30 * time.Second}
	resp, err := client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: o.topic, NumPartitions: o.partitions, ReplicationFactor: 1}}})
	if err != nil {
		return fmt.Errorf("create topic %s: %w", o.topic, err)
	}
	if err := resp.Errors[o.topic]; err != nil && !errors.Is(err, kafka.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", o.topic, err)
	}
	return nil
}

// deleteTopics deletes topics; one that does not exist is not an error.
func deleteTopics(ctx context.Context, brokers, topics []string) error {
	if len(brokers) == 0 {
		return errors.New("--delete-topics needs --kafka.brokers")
	}
	return ingest.DeleteTopics(ctx, ingest.KafkaConfig{Brokers: brokers, DialTimeout: 30 * time.Second}, topics)
}

// runSink receives Alertmanager webhook notifications and counts the
// distinct storm alerts (by storm_seq) they carried, with the time of the
// first and the latest notification.
func runSink(addr string) error {
	var (
		mu            sync.Mutex
		seen          = map[string]struct{}{}
		notifications int
		first, last   time.Time
	)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /", func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
			} `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		notifications++
		if first.IsZero() {
			first = now
		}
		last = now
		for _, a := range msg.Alerts {
			seen[a.Labels["storm_seq"]] = struct{}{}
		}
	})
	mux.HandleFunc("GET /stats", func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		_ = json.NewEncoder(w).Encode(map[string]any{"notifications": notifications, "distinct_alerts": len(seen),
			"first_unix": float64(first.UnixNano()) / 1e9, "last_unix": float64(last.UnixNano()) / 1e9})
	})
	fmt.Printf("loadgen: sink listening on %s\n", addr)
	return http.ListenAndServe(addr, mux)
}
