package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqprom"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.uber.org/zap"
)

// File names inside the data directory.
const (
	dbFile     = "chat.db"
	backupFile = "messages.jsonl"
)

// Config configures one run of the chat service.
type Config struct {
	Topic         string        // topic carrying MessageEvents
	Partitions    int           // partitions of Topic, if it has to be created
	Group         string        // consumer group of the persist and backup handlers
	N             int           // messages to send
	Conversations int           // conversations the messages are spread over
	DataDir       string        // directory of the SQLite database and the backup file
	Follow        bool          // keep consuming until ctx ends instead of stopping when done
	Timeout       time.Duration // without Follow: how long to wait for all messages to be stored
	RunID         string        // prefix of this run's message IDs; random if empty
	HTTPAddr      string        // if set, serve /metrics (Prometheus) and /readyz, /livez, /healthz there
	S3            S3Config      // if S3.Bucket is set, the backup goes to S3 instead of the backup file
}

// DefaultConfig returns the settings of the original chat backend.
func DefaultConfig() Config {
	return Config{
		Topic:         "chat-messages",
		Partitions:    3,
		Group:         "chat-service",
		N:             1000,
		Conversations: 10,
		Timeout:       time.Minute,
	}
}

// Validate reports settings Run cannot work with: a negative N, fewer than
// one conversation or partition, or no time to wait without Follow.
func (c Config) Validate() error {
	switch {
	case c.N < 0:
		return fmt.Errorf("bad config: n=%d: want 0 or more messages", c.N)
	case c.Conversations < 1:
		return fmt.Errorf("bad config: conversations=%d: want 1 or more", c.Conversations)
	case c.Partitions < 1:
		return fmt.Errorf("bad config: partitions=%d: want 1 or more", c.Partitions)
	case !c.Follow && c.Timeout <= 0:
		return fmt.Errorf("bad config: timeout=%v: want a positive wait (or follow)", c.Timeout)
	}
	return nil
}

// Summary is what a run did. Persisted and BackedUp count this run's
// messages only (by ID prefix), so a reused data directory does not skew them.
type Summary struct {
	Sent        int   // messages handed to the producer
	Delivered   int   // messages the broker acknowledged
	Failed      int   // messages that failed delivery (or could not be sent)
	Persisted   int   // this run's rows in SQLite
	BackedUp    int   // this run's distinct messages in the backup (file or S3)
	BackupLines int   // this run's records in the backup (> BackedUp after redelivery)
	Committed   int64 // sum of the group's committed offsets over the topic's partitions
	End         int64 // sum of the topic's end offsets: Committed < End means unconsumed messages
	Elapsed     time.Duration
	Interrupted bool // ctx ended before the run was complete
}

// String formats the summary as one line.
func (s Summary) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "sent=%d delivered=%d failed=%d persisted=%d backed_up=%d committed=%d",
		s.Sent, s.Delivered, s.Failed, s.Persisted, s.BackedUp, s.Committed)
	if lag := s.End - s.Committed; lag != 0 {
		fmt.Fprintf(&b, " lag=%d", lag)
	}
	if d := s.BackupLines - s.BackedUp; d > 0 {
		fmt.Fprintf(&b, " backup_duplicates=%d", d)
	}
	fmt.Fprintf(&b, " elapsed=%s", s.Elapsed.Round(time.Millisecond))
	return b.String()
}

// Problems lists every way in which messages were lost or left unprocessed.
// It is empty for a clean run.
func (s Summary) Problems() []string {
	var p []string
	if s.Failed > 0 {
		p = append(p, fmt.Sprintf("%d message(s) failed delivery", s.Failed))
	}
	if s.Delivered+s.Failed != s.Sent {
		p = append(p, fmt.Sprintf("%d sent message(s) have no delivery report", s.Sent-s.Delivered-s.Failed))
	}
	if s.Persisted != s.Delivered {
		p = append(p, fmt.Sprintf("persisted %d of %d delivered message(s)", s.Persisted, s.Delivered))
	}
	if s.BackedUp != s.Delivered {
		p = append(p, fmt.Sprintf("backed up %d of %d delivered message(s)", s.BackedUp, s.Delivered))
	}
	if s.Committed != s.End {
		p = append(p, fmt.Sprintf("committed offsets trail the topic's end by %d", s.End-s.Committed))
	}
	return p
}

// Run runs the chat service once: it creates the topic, starts the consumer
// with its persist and backup handlers, sends cfg.N messages asynchronously,
// waits until every delivered message is stored (or, with cfg.Follow, until
// ctx ends), stops, and reports what happened.
//
// Run returns an error when the service could not run or the consumer
// stopped with an error; lost messages show in [Summary.Problems]. It
// returns the summary in both cases when it got far enough to compute one.
func Run(ctx context.Context, cfg Config, brokers []string, log *zap.Logger) (Summary, error) {
	start := time.Now()
	var sum Summary
	if err := cfg.Validate(); err != nil {
		return sum, err
	}
	if cfg.RunID == "" {
		cfg.RunID = fmt.Sprintf("%x", time.Now().UnixNano())
	}
	prefix := idPrefix(cfg.RunID)
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return sum, err
	}

	store, err := OpenStore(filepath.Join(cfg.DataDir, dbFile))
	if err != nil {
		return sum, err
	}
	defer store.Close()
	backup, err := openBackupTarget(ctx, cfg, prefix)
	if err != nil {
		return sum, err
	}
	defer backup.Close()
	log.Info("backing up", zap.Stringer("to", backup))

	// Idempotent: an existing topic with as many partitions is fine.
	// ReplicationFactor 0 takes the cluster's default.
	if err := mq.CreateTopics(ctx, brokers, []mq.TopicSpec{{Name: cfg.Topic, Partitions: cfg.Partitions}}); err != nil {
		return sum, err
	}

	// Metrics and health, when asked for.
	var observer mq.Observer
	var metrics *mqprom.Observer
	if cfg.HTTPAddr != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		if metrics, err = mqprom.New(reg); err != nil {
			return sum, err
		}
		observer = metrics
		defer serveHTTP(ctx, cfg.HTTPAddr, reg, log)()
	}

	// The consumer: every message goes to persist, then to backup.
	consumer, err := mq.NewKafkaConsumer[MessageEvent](brokers, cfg.Topic, cfg.Group, mq.WithLogger(log), mq.WithObserver(observer))
	if err != nil {
		return sum, err
	}
	if metrics != nil {
		defer metrics.ObserveConsumer(cfg.Group, consumer)()
		healthMux.Store(consumer.HealthHandler())
	}
	if err := consumer.RegisterHandler(mq.HandlerFunc[MessageEvent](store.Persist), mq.WithHandlerName("persist")); err != nil {
		return sum, err
	}
	if err := consumer.RegisterHandler(backup.Handler(), mq.WithHandlerName("backup")); err != nil {
		return sum, err
	}
	consumerCtx, stopConsumer := context.WithCancel(ctx)
	defer stopConsumer()
	consumerDone := make(chan error, 1)
	go func() { consumerDone <- consumer.Run(consumerCtx) }()

	// The producer, with the original chat backend's settings.
	var delivered, failed atomic.Int64
	producer, err := mq.NewProducer[MessageEvent](brokers, cfg.Topic,
		mq.WithBatchSize(100),
		mq.WithBatchTimeout(10*time.Millisecond),
		mq.WithCompression(mq.CompressionSnappy),
		mq.WithAsync(true),
		mq.WithDeliveryHandler(func(msg mq.Message[MessageEvent], err error) {
			if err != nil {
				lvl := zap.DebugLevel // log the first failure, count the rest
				if failed.Add(1) == 1 {
					lvl = zap.WarnLevel
				}
				log.Log(lvl, "delivery failed", zap.String("id", msg.Value.ID), zap.Error(err))
				return
			}
			delivered.Add(1)
		}),
		mq.WithLogger(log),
		mq.WithObserver(observer),
	)
	if err != nil {
		stopConsumer()
		<-consumerDone
		return sum, err
	}
	sendErrors := 0
	for _, ev := range newEvents(cfg.RunID, cfg.N, cfg.Conversations) {
		if _, err := producer.Send(ctx, []byte(ev.ConversationID), ev); err != nil {
			// The message was not buffered, so the delivery handler will
			// not hear of it. Stop sending: interrupted, or the producer
			// cannot work (topic missing, closed).
			if ctx.Err() == nil {
				sendErrors++
				log.Error("send failed; sending no more", zap.String("id", ev.ID), zap.Error(err))
			}
			break
		}
		sum.Sent++
	}
	// Close flushes what is buffered; failures were counted by the
	// delivery handler, so its error adds nothing.
	_ = producer.Close()
	sum.Delivered, sum.Failed = int(delivered.Load()), int(failed.Load())+sendErrors
	sum.Sent += sendErrors
	log.Info("sent", zap.Int("sent", sum.Sent), zap.Int("delivered", sum.Delivered), zap.Int("failed", sum.Failed))

	// Wait for the handlers, then stop the consumer: it commits what it
	// processed and leaves the group.
	var runErr error
	running := true
	if cfg.Follow {
		log.Info("following; stop with Ctrl-C")
		select {
		case <-ctx.Done():
		case runErr = <-consumerDone:
			running = false
		}
	} else {
		// Both outputs are read back, so this also works when other
		// instances of the service share the data directory and take
		// some of the partitions.
		stored := func() bool {
			if _, n, err := backup.Count(ctx); err != nil || n < sum.Delivered {
				return false
			}
			n, err := store.Count(ctx, prefix)
			return err == nil && n >= sum.Delivered
		}
		var ok bool
		ok, running, runErr = waitStored(ctx, cfg.Timeout, consumerDone, stored)
		if !ok && running && ctx.Err() == nil {
			log.Error("timed out waiting for messages to be stored", zap.Duration("timeout", cfg.Timeout))
		}
	}
	sum.Interrupted = ctx.Err() != nil
	stopConsumer()
	if running {
		runErr = <-consumerDone
	}
	if runErr != nil {
		log.Error("consumer failed", zap.Error(runErr))
	}

	// The summary reads the real outputs, not the handlers' counters.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var errs []error
	if sum.Persisted, err = store.Count(sctx, prefix); err != nil {
		errs = append(errs, err)
	}
	if err := backup.Close(); err != nil {
		errs = append(errs, err)
	}
	if sum.BackupLines, sum.BackedUp, err = backup.Count(sctx); err != nil {
		errs = append(errs, err)
	}
	offsets, err := groupOffsets(sctx, brokers, cfg, !sum.Interrupted)
	errs = append(errs, err)
	for _, o := range offsets {
		sum.Committed += max(o.Committed, 0)
		sum.End += o.End
	}
	sum.Elapsed = time.Since(start)
	return sum, errors.Join(append([]error{runErr}, errs...)...)
}

// groupOffsets reads the group's offsets on the topic. With wait, while
// they trail the topic's end it reads them again for a few seconds: other
// members of the group (other instances of this program) commit the
// partitions they hold at their commit interval, after the messages are
// stored.
func groupOffsets(ctx context.Context, brokers []string, cfg Config, wait bool) ([]mq.GroupOffset, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		offsets, err := mq.GroupOffsets(ctx, brokers, cfg.Group, cfg.Topic)
		behind := false
		for _, o := range offsets {
			behind = behind || max(o.Committed, 0) < o.End
		}
		if err != nil || !behind || !wait || time.Now().After(deadline) {
			return offsets, err
		}
		select {
		case <-ctx.Done():
			return offsets, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitStored polls stored until it reports true, ctx ends, timeout passes or
// the consumer stops. It reports whether stored became true, whether the
// consumer is still running and, if it stopped, its error.
func waitStored(ctx context.Context, timeout time.Duration, consumerDone <-chan error, stored func() bool) (ok, running bool, runErr error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !stored() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false, true, nil
		case <-deadline.C:
			return false, true, nil
		case err := <-consumerDone:
			return false, false, err
		}
	}
	return true, true, nil
}
