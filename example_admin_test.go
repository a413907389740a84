package mq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go"
)

// Examples of topic administration, offset resets and error
// classification. Those that need a broker have no Output section: they are
// compiled, not run.

var exampleBrokers = []string{"localhost:9092"}

// ErrInvalidMessage is what a handler returns for a message that no retry
// will fix.
var ErrInvalidMessage = errors.New("invalid chat message")

// ErrTableMissing is what the failure table returns when it does not exist.
var ErrTableMissing = errors.New("table missing")

// failures stands in for a table of failed messages.
var failures interface {
	Insert(ctx context.Context, topic string, partition int, offset int64, value []byte, reason string) error
}

func ExampleCreateTopics() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// The consumer's recoverer writes to retry and dead-letter topics:
	// create them with the main topic's settings.
	recoverer := mq.RetryTopicRecoverer([]time.Duration{10 * time.Second, time.Minute}, "")
	topics := recoverer.TopicSpecs(mq.TopicSpec{
		Name:              "chat-messages",
		Partitions:        6,
		ReplicationFactor: 3,
		Configs:           map[string]string{"min.insync.replicas": "2", "retention.ms": "604800000"},
	})
	// Idempotent: run it at every start. It returns once every broker knows
	// the topics' leaders.
	err := mq.CreateTopics(ctx, exampleBrokers, topics)
	var pce *mq.PartitionCountError
	var rfe *mq.ReplicationFactorError
	switch {
	case errors.As(err, &pce):
		log.Fatalf("%s has %d partitions; keys would move if we changed it", pce.Topic, pce.Partitions)
	case errors.As(err, &rfe):
		log.Fatalf("only %d brokers: lower the replication factor of %s", rfe.Brokers, rfe.Topic)
	case errors.Is(err, kafka.InvalidConfiguration):
		log.Fatalf("the broker rejected a config: %v", err)
	case err != nil:
		log.Fatal(err)
	}
}

func ExampleDescribeTopic() {
	d, err := mq.DescribeTopic(context.Background(), exampleBrokers, "chat-messages")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d partitions, replication factor %d, retention.ms=%s\n",
		d.Name, len(d.Partitions), d.ReplicationFactor, d.Configs["retention.ms"])
	for _, p := range d.Partitions {
		fmt.Printf("  partition %d: leader %d, in sync %v\n", p.ID, p.Leader, p.InSync)
	}
}

func ExampleResetOffsets() {
	ctx := context.Background()
	// Replay everything written since an incident started. The group's
	// consumers must be stopped: a reset refuses while the group has members.
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	plan, err := mq.ResetOffsets(ctx, exampleBrokers, "chat-service", "chat-messages", mq.ResetToTime(since),
		mq.WithResetDryRun(true)) // look before committing
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range plan {
		fmt.Printf("partition %d: %d -> %d\n", p.Partition, p.Committed, p.New)
	}

	_, err = mq.ResetOffsets(ctx, exampleBrokers, "chat-service", "chat-messages", mq.ResetToTime(since))
	var active *mq.ActiveGroupError
	if errors.As(err, &active) {
		log.Fatalf("stop the %d consumer(s) of %s first", active.Members, active.Group)
	}
	if err != nil {
		log.Fatal(err)
	}
}

func ExampleGroupOffsets() {
	offsets, err := mq.GroupOffsets(context.Background(), exampleBrokers, "chat-service", "chat-messages")
	if err != nil {
		log.Fatal(err)
	}
	var lag int64
	for _, o := range offsets {
		lag += o.Lag
	}
	fmt.Println("chat-service is", lag, "messages behind")
}

func ExampleWithRetryableIf() {
	c, err := mq.NewKafkaConsumer[ChatMessage](exampleBrokers, "chat-messages", "chat-service",
		// An invalid message fails the same way every time: no retries, straight
		// to the recoverer (here the dead-letter topic).
		mq.WithRetryableIf(mq.NotRetryable(ErrInvalidMessage)),
		mq.WithRecoverer(mq.DeadLetterRecoverer("")),
	)
	if err != nil {
		log.Fatal(err)
	}
	err = c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		if m.Value.Text == "" {
			return fmt.Errorf("message %s: %w", m.Value.ID, ErrInvalidMessage)
		}
		return store.Upsert(ctx, m.Value)
	}, mq.WithHandlerName("persist"))
	if err != nil {
		log.Fatal(err)
	}
	// This handler only retries timeouts; its other errors go to the
	// recoverer at once (a handler's classification wins over the consumer's).
	err = c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		return backup.Append(ctx, m.Value.ConversationID, m.Raw)
	}, mq.WithHandlerName("backup"), mq.WithHandlerRetryableIf(mq.RetryableOnly(context.DeadlineExceeded)))
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func ExampleNotRetryable() {
	retryable := mq.NotRetryable(ErrInvalidMessage)
	fmt.Println(retryable(fmt.Errorf("message 7: %w", ErrInvalidMessage)))
	fmt.Println(retryable(context.DeadlineExceeded))
	// Output:
	// false
	// true
}

func ExampleFuncRecoverer() {
	// Failed messages go to a table of your own; the consumer commits past a
	// message only once it is stored there.
	recoverer := mq.FuncRecoverer(func(ctx context.Context, f mq.FailedMessage) error {
		m := f.Message
		err := failures.Insert(ctx, m.Topic, m.Partition, m.Offset, m.Value, f.Err.Error())
		if errors.Is(err, ErrTableMissing) {
			return mq.Permanent(err) // no point retrying: stop, Run returns *mq.RecovererError
		}
		// nil: done, commit past it; another error: called again with backoff,
		// nothing past the message committed meanwhile.
		return err
	})
	c, err := mq.NewKafkaConsumer[ChatMessage](exampleBrokers, "chat-messages", "chat-service", mq.WithRecoverer(recoverer))
	if err != nil {
		log.Fatal(err)
	}
	_ = c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		return store.Upsert(ctx, m.Value)
	})
	err = c.Run(context.Background())
	var rerr *mq.RecovererError
	if errors.As(err, &rerr) {
		log.Fatalf("cannot record a failed message: %v (it failed with: %v)", rerr.Err, rerr.Failure)
	}
}
