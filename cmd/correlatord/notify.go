package main

import (
	"context"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/correlatord/correlatord/incidents"
	"github.com/correlatord/correlatord/incidents/notify"
	"github.com/correlatord/correlatord/ingest"
)

// notificationsOf turns incident changes into notifications. The key is
// the incident id, its version and the kind: deterministic, so a batch
// processed again after a crash produces the same keys and receivers that
// honour them see each notification once.
func notificationsOf(chs []incidents.Change) []notify.Notification {
	var out []notify.Notification
	for _, c := range chs {
		in := c.Incident
		if in == nil {
			continue
		}
		for _, n := range c.Notices {
			out = append(out, notify.Notification{
				Key:        fmt.Sprintf("%s:%d:%s", in.ID, in.Version, n.Kind),
				Kind:       notify.Kind(n.Kind),
				IncidentID: in.ID,
				At:         in.UpdatedAt,
				Reason:     n.Reason,
				Ticket:     ticketOf(in),
			})
		}
	}
	return out
}

func ticketOf(in *incidents.Incident) notify.Ticket {
	t := notify.Ticket{
		ID: in.ID, Title: in.Title, Description: in.Description, Status: string(in.Status), Category: string(in.Category),
		Priority: string(in.Priority), Impact: in.Impact, Urgency: in.Urgency, RootCauseCI: in.RootCauseCI,
		SupportGroup: in.SupportGroup, AssignedTo: in.AssignedTo, Services: in.Services, CIs: in.CIs, OpenedAt: in.OpenedAt,
		EscalationLevel: in.EscalationLevel, KnownErrorID: in.KnownErrorID, ProblemID: in.ProblemID, ChangeID: in.ChangeID,
		Members: len(in.EventIDs),
	}
	if !in.ResolvedAt.IsZero() {
		r := in.ResolvedAt
		t.ResolvedAt = &r
	}
	return t
}

// emitChanges passes a batch's incident changes on: to the replay hook,
// to the outbox (with Kafka at the next checkpoint, before the state is
// written; without it at once) and to the analytics writers. Called with
// w.mu held.
func (w *partitionWorker) emitChanges(chs []incidents.Change) {
	s := w.stage
	if len(chs) == 0 {
		return
	}
	if s.onChanges != nil {
		s.onChanges(w.partition, chs)
	}
	if s.outbox != nil {
		ns := notificationsOf(chs)
		if s.changelog == nil {
			if err := s.outbox.Enqueue(context.Background(), ns); err != nil {
				s.logger.Error("notifications could not be queued", zap.Error(err))
			}
		} else {
			w.outgoing = append(w.outgoing, ns...)
		}
	}
	if s.records != nil {
		s.records.add(chs)
	}
}

// setUpNotifications builds the outbox the partitions write to and returns
// the function that delivers from it until its context ends.
func setUpNotifications(cfg *Config, state *stateStage, reg prometheus.Registerer, logger *zap.Logger, cleanups *[]func() error) (func(context.Context) error, error) {
	nc := &cfg.Notify
	m := notify.NewMetrics(reg)
	routes, err := notify.NewRoutes(nc, notify.RouteOptions{})
	if err != nil {
		return nil, err
	}
	log := logger.With(zap.String("component", "notify"))
	disp := notify.NewDispatcher(routes, notify.DispatcherOptions{Retry: nc.Retry, Metrics: m, Logger: log})
	names := make([]string, len(nc.Targets))
	for i, t := range nc.Targets {
		names[i] = t.Name + " (" + t.Type + ")"
	}
	switch nc.Outbox.Type {
	case "kafka":
		w, err := ingest.NewWriter(cfg.Kafka, nc.Outbox.Topic, logger)
		if err != nil {
			return nil, err
		}
		*cleanups = append(*cleanups, w.Close)
		state.outbox = notify.NewKafkaOutbox(w, m)
		rc := cfg.Kafka
		rc.Topics, rc.GroupID = []string{nc.Outbox.Topic}, nc.Outbox.GroupID
		r, err := ingest.NewReader(rc, logger)
		if err != nil {
			return nil, err
		}
		*cleanups = append(*cleanups, r.Close)
		runner := notify.NewKafkaRunner(r, disp, notify.KafkaRunnerOptions{Metrics: m, Logger: log})
		log.Info("notifications on", zap.Strings("targets", names), zap.String("outbox_topic", nc.Outbox.Topic))
		return runner.Run, nil
	default:
		ob, err := notify.OpenFileOutbox(nc.Outbox.DataDir, notify.FileOutboxOptions{MaxPending: nc.Outbox.MaxPending, Metrics: m, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("notify.outbox.data_dir: %w", err)
		}
		*cleanups = append(*cleanups, ob.Close)
		state.outbox = ob
		log.Info("notifications on", zap.Strings("targets", names), zap.String("outbox_dir", nc.Outbox.DataDir), zap.Int("pending", ob.Pending()))
		return func(ctx context.Context) error { return ob.Run(ctx, disp) }, nil
	}
}
