// Command events shows how to add event types to a service: each type is a
// plain struct with its own topic, [mq.Producer], [mq.KafkaConsumer] and
// handler, and all of them share one generic helper, runPipeline. Adding a
// type is one struct, one topic and one runPipeline call.
//
// It uses an in-process Kafka broker unless KAFKA_BROKERS names a cluster:
//
//	go run ./examples/events
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqtest"
)

// UserLoginEvent says that a user logged in.
type UserLoginEvent struct {
	UserID string    `json:"user_id"`
	IP     string    `json:"ip"`
	At     time.Time `json:"at"`
}

// OrderPaidEvent says that an order was paid.
type OrderPaidEvent struct {
	OrderID     string    `json:"order_id"`
	UserID      string    `json:"user_id"`
	AmountCents int64     `json:"amount_cents"`
	Currency    string    `json:"currency"`
	PaidAt      time.Time `json:"paid_at"`
}

// Topics of the event types. Producers and consumers never create topics:
// run creates them with mq.CreateTopics.
const (
	topicUserLogins = "user-logins"
	topicOrdersPaid = "orders-paid"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()

	cluster, err := mqtest.NewCluster(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
	err = run(ctx, cluster.Addrs(), os.Stdout)
	_ = cluster.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "events:", err)
		os.Exit(1)
	}
}

// run creates the topics on brokers, then produces and consumes a few events of each
// type, printing what the handlers saw to out.
func run(ctx context.Context, brokers []string, out io.Writer) error {
	// Idempotent, so it can run at every start; ReplicationFactor 0 takes
	// the cluster's default.
	if err := mq.CreateTopics(ctx, brokers, []mq.TopicSpec{
		{Name: topicUserLogins, Partitions: 3},
		{Name: topicOrdersPaid, Partitions: 3},
	}); err != nil {
		return err
	}
	w := &lockedWriter{w: out} // handlers of both pipelines print concurrently
	now := time.Now().UTC().Truncate(time.Second)

	logins := []UserLoginEvent{
		{UserID: "u1", IP: "192.0.2.10", At: now},
		{UserID: "u2", IP: "198.51.100.7", At: now.Add(time.Second)},
		{UserID: "u1", IP: "192.0.2.10", At: now.Add(2 * time.Second)},
	}
	orders := []OrderPaidEvent{
		{OrderID: "o-1001", UserID: "u1", AmountCents: 1999, Currency: "EUR", PaidAt: now},
		{OrderID: "o-1002", UserID: "u2", AmountCents: 50000, Currency: "USD", PaidAt: now.Add(time.Second)},
	}

	var handledLogins, handledOrders atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() {
		errs[0] = runPipeline(ctx, brokers, topicUserLogins, "security-audit", logins,
			func(e UserLoginEvent) []byte { return []byte(e.UserID) },
			func(_ context.Context, m mq.Message[UserLoginEvent]) error {
				w.Printf("login: user=%s ip=%s at=%s\n", m.Value.UserID, m.Value.IP, m.Value.At.Format(time.RFC3339))
				handledLogins.Add(1)
				return nil
			})
	})
	wg.Go(func() {
		errs[1] = runPipeline(ctx, brokers, topicOrdersPaid, "billing", orders,
			func(e OrderPaidEvent) []byte { return []byte(e.OrderID) },
			func(_ context.Context, m mq.Message[OrderPaidEvent]) error {
				w.Printf("order paid: order=%s user=%s amount=%d.%02d %s\n", m.Value.OrderID, m.Value.UserID,
					m.Value.AmountCents/100, m.Value.AmountCents%100, m.Value.Currency)
				handledOrders.Add(1)
				return nil
			})
	})
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	w.Printf("done: handled %d %s and %d %s events\n", handledLogins.Load(), topicUserLogins, handledOrders.Load(), topicOrdersPaid)
	return nil
}

// runPipeline sends events to topic, keyed by key, then consumes the topic in
// consumer group group, calling handle for each message, until handle has
// succeeded on every event it sent. Messages the group had not consumed
// before are handled too. It returns the first error from producing or from
// the consumer.
func runPipeline[T any](ctx context.Context, brokers []string, topic, group string, events []T,
	key func(T) []byte, handle func(context.Context, mq.Message[T]) error) error {
	if len(events) == 0 {
		return nil
	}
	// Produce synchronously: the results say where each event landed.
	producer, err := mq.NewProducer[T](brokers, topic)
	if err != nil {
		return err
	}
	msgs := make([]mq.Message[T], len(events))
	for i, e := range events {
		msgs[i] = mq.Message[T]{Key: key(e), Value: e}
	}
	results, err := producer.SendMessages(ctx, msgs...)
	if cerr := producer.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("producing to %s: %w", topic, err)
	}
	// The consumer is done once it has passed the last sent offset of
	// every partition.
	pending := make(map[int]int64) // partition -> last offset sent
	for _, r := range results {
		pending[r.Partition] = max(pending[r.Partition], r.Offset)
	}

	consumer, err := mq.NewKafkaConsumer[T](brokers, topic, group)
	if err != nil {
		return err
	}
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	var mu sync.Mutex
	err = consumer.RegisterHandler(mq.HandlerFunc[T](func(ctx context.Context, m mq.Message[T]) error {
		if err := handle(ctx, m); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if last, ok := pending[m.Partition]; ok && m.Offset >= last {
			delete(pending, m.Partition)
			if len(pending) == 0 {
				stop() // Run commits what was handled and returns nil
			}
		}
		return nil
	}), mq.WithHandlerName(topic))
	if err != nil {
		return err
	}
	if err := consumer.Run(ctx); err != nil {
		return fmt.Errorf("consuming %s: %w", topic, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(pending) > 0 {
		return fmt.Errorf("consuming %s: stopped before all events were handled: %w", topic, context.Cause(ctx))
	}
	return nil
}

// lockedWriter serialises Printf calls from concurrent handlers.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Printf formats to the underlying writer under the lock.
func (l *lockedWriter) Printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}
