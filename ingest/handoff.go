package ingest

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/segmentio/kafka-go"

	"github.com/correlatord/correlatord/event"
)

// HeaderHandoff marks a message of the keyed topic whose events a
// LocalHandoff of the producing process holds: its value is the process's
// nonce and the entry's sequence number.
const HeaderHandoff = "correlator-handoff"

// LocalHandoff hands the events the first stage produced to the keyed
// topic over to the stateful stage of the same process, which would
// otherwise decode them again from the message it fetches: over HTTP with
// Kafka on, that decoding was a sixth of the daemon's CPU. The message
// still goes through the broker, which orders and keeps it; only its
// decoding is skipped, and only when this process produced it, owns its
// partition, and still holds its events. Anything else (a message from
// another instance, one fetched again after a restart or a rebalance, one
// whose events were dropped) is decoded as before, to the same events.
//
// What it holds is bounded by events and by age: a message never fetched
// here (its partition moved to another instance, its produce failed) is
// dropped after MaxAge, and Put refuses events beyond MaxEvents, so that
// when the stateful stage falls behind, the oldest events, which it
// fetches next, are the ones held.
type LocalHandoff struct {
	nonce     [8]byte
	maxEvents int
	maxAge    time.Duration
	now       func() time.Time

	mu      sync.Mutex
	next    uint64
	held    int // events in entries
	entries map[uint64]handoffEntry
	queue   []handoffAt // Put order, for expiry; taken entries leave lazily
	head    int
	owned   map[int]bool

	taken, refused, dropped prometheus.Counter
}

type handoffEntry struct {
	partition int
	events    []event.Event
}

type handoffAt struct {
	seq uint64
	at  time.Time
}

// NewLocalHandoff returns a hand-off holding at most maxEvents events, each
// for at most maxAge. now is the clock of the ages (time.Now when nil).
func NewLocalHandoff(maxEvents int, maxAge time.Duration, now func() time.Time, reg prometheus.Registerer) *LocalHandoff {
	if now == nil {
		now = time.Now
	}
	h := &LocalHandoff{maxEvents: maxEvents, maxAge: maxAge, now: now,
		entries: make(map[uint64]handoffEntry), owned: make(map[int]bool)}
	_, _ = rand.Read(h.nonce[:]) // never fails (crypto/rand)
	events := promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
		Name: "correlator_ingest_handoff_events_total",
		Help: "Events of the keyed topic handed from the first stage to the stateful stage in process, by result: taken (not decoded again), refused (the hand-off was full: decoded from the message), dropped (held longer than the maximum age, their partition released, their message not produced or dead-lettered, or over the limits the decoder applies: decoded if fetched here).",
	}, []string{"result"})
	h.taken, h.refused, h.dropped = events.WithLabelValues("taken"), events.WithLabelValues("refused"), events.WithLabelValues("dropped")
	return h
}

// Own marks partition as processed by this process (owned) or not. Put
// holds nothing for a partition not owned, and releasing one drops what
// was held for it: another instance fetches its messages.
func (h *LocalHandoff) Own(partition int, owned bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if owned {
		h.owned[partition] = true
		return
	}
	delete(h.owned, partition)
	for seq, e := range h.entries {
		if e.partition == partition {
			h.drop(seq, e)
		}
	}
}

// Owns reports whether partition is processed by this process.
func (h *LocalHandoff) Owns(partition int) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.owned[partition]
}

// Put holds events, which the hand-off owns from now on (nothing may
// change them, their maps included), for the message to partition that
// encodes exactly them, and returns the header that message must carry.
// ok is false when the partition is not owned or the hand-off is full:
// the message then goes without the header.
func (h *LocalHandoff) Put(partition int, events []event.Event) (hdr kafka.Header, ok bool) {
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	h.expire(now)
	if !h.owned[partition] {
		return kafka.Header{}, false
	}
	if h.held+len(events) > h.maxEvents {
		h.refused.Add(float64(len(events)))
		return kafka.Header{}, false
	}
	h.next++
	seq := h.next
	h.entries[seq] = handoffEntry{partition: partition, events: events}
	h.held += len(events)
	h.queue = append(h.queue, handoffAt{seq, now})
	v := make([]byte, 16)
	copy(v, h.nonce[:])
	binary.BigEndian.PutUint64(v[8:], seq)
	return kafka.Header{Key: HeaderHandoff, Value: v}, true
}

// Take returns the events held for m, which no longer holds them: ok is
// false when m carries no header of this process's hand-off, or its
// events were dropped. The caller owns the events.
func (h *LocalHandoff) Take(m *kafka.Message) (events []event.Event, ok bool) {
	return h.remove(m, func([]event.Event) bool { return true })
}

// TakeWithin is Take for a consumer that decodes with limits l: events
// not all within them (keyedWithin) are dropped, so that decoding the
// message reports them as it always did.
func (h *LocalHandoff) TakeWithin(m *kafka.Message, l Limits) ([]event.Event, bool) {
	l = l.withDefaults()
	return h.remove(m, func(evs []event.Event) bool { return keyedWithin(l, evs) })
}

// Discard drops the events held for m, if any: its message is not
// processed as it is (dead-lettered, or not produced at all).
func (h *LocalHandoff) Discard(m *kafka.Message) {
	h.remove(m, func([]event.Event) bool { return false })
}

// remove removes the events held for m, and returns them if take says so.
func (h *LocalHandoff) remove(m *kafka.Message, take func([]event.Event) bool) ([]event.Event, bool) {
	seq, ok := h.seqOf(m)
	if !ok {
		return nil, false
	}
	now := h.now()
	h.mu.Lock()
	defer h.mu.Unlock()
	// Taking expires too, so that what is left behind when the first
	// stage goes quiet does not wait for its next Put.
	h.expire(now)
	e, ok := h.entries[seq]
	if !ok {
		return nil, false
	}
	if !take(e.events) {
		h.drop(seq, e)
		return nil, false
	}
	delete(h.entries, seq)
	h.held -= len(e.events)
	h.taken.Add(float64(len(e.events)))
	return e.events, true
}

func (h *LocalHandoff) seqOf(m *kafka.Message) (uint64, bool) {
	for _, hd := range m.Headers {
		if hd.Key == HeaderHandoff && len(hd.Value) == 16 && [8]byte(hd.Value[:8]) == h.nonce {
			return binary.BigEndian.Uint64(hd.Value[8:]), true
		}
	}
	return 0, false
}

// expire drops the entries older than maxAge, and forgets the queue's
// taken ones at its front. Called with h.mu held.
func (h *LocalHandoff) expire(now time.Time) {
	for h.head < len(h.queue) {
		q := h.queue[h.head]
		e, held := h.entries[q.seq]
		if held && now.Sub(q.at) <= h.maxAge {
			break
		}
		if held {
			h.drop(q.seq, e)
		}
		h.queue[h.head] = handoffAt{}
		h.head++
	}
	if h.head > len(h.queue)/2 {
		n := copy(h.queue, h.queue[h.head:])
		h.queue = h.queue[:n]
		h.head = 0
	}
}

func (h *LocalHandoff) drop(seq uint64, e handoffEntry) {
	delete(h.entries, seq)
	h.held -= len(e.events)
	h.dropped.Add(float64(len(e.events)))
}

// Held returns the number of events held.
func (h *LocalHandoff) Held() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.held
}

// keyedWithin reports whether the events are within the limits DecodeKeyed
// applies to what it decodes: the counts of labels and annotations, the
// size of every string field, and valid UTF-8 in the CI, which binding
// takes from the CMDB rather than from a decoded payload. The first stage's
// decoders apply the same limits to what they read, so this fails only
// for what the first stage adds: a bound CI, or an annotation the decoder
// derives. A message with such an event is decoded instead of taken, so
// that it is reported as it always was.
func keyedWithin(l Limits, events []event.Event) bool {
	for i := range events {
		e := &events[i]
		if len(e.Labels) > l.MaxLabels || len(e.Annotations) > l.MaxLabels {
			return false
		}
		for _, s := range [...]string{e.ID, e.Source, string(e.Kind), string(e.Status), string(e.Severity), e.CI, e.Summary, e.Fingerprint} {
			if len(s) > l.MaxLabelBytes {
				return false
			}
		}
		if !utf8.ValidString(e.CI) {
			return false
		}
	}
	return true
}
