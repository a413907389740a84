package mqs3_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/mqkit/mq"
	"github.com/mqkit/mq/mqs3"
)

// A consumer that backs every message of a topic up to S3, one object per
// batch of a partition (up to 500 messages, gathered for up to a second).
func Example() {
	ctx := context.Background()
	client, err := mqs3.NewClient(ctx, mqs3.ClientConfig{Endpoint: "http://127.0.0.1:8333", Anonymous: true})
	if err != nil {
		log.Fatal(err)
	}
	backup, err := mqs3.New(client, "backups", mqs3.WithPrefix("chat"), mqs3.WithGzip(true))
	if err != nil {
		log.Fatal(err)
	}
	consumer, err := mq.NewKafkaConsumer[[]byte]([]string{"localhost:9092"}, "chat-messages", "chat-backup",
		mq.WithCodec[[]byte](mq.BytesCodec{}), mq.WithBatchMaxMessages(500), mq.WithBatchLinger(time.Second))
	if err != nil {
		log.Fatal(err)
	}
	if err := consumer.RegisterBatchHandler(mqs3.BatchHandler[[]byte](backup), mq.WithHandlerName("s3-backup")); err != nil {
		log.Fatal(err)
	}
	if err := consumer.Run(ctx); err != nil { // until ctx ends; commits only what is stored
		log.Fatal(err)
	}
}

// Restoring a topic's backup: first the plan, then the records, to the same
// partitions of a topic that exists.
func ExampleRestore() {
	ctx := context.Background()
	client, err := mqs3.NewClient(ctx, mqs3.ClientConfig{Endpoint: "http://127.0.0.1:8333", Anonymous: true})
	if err != nil {
		log.Fatal(err)
	}
	plan, err := mqs3.PlanRestore(ctx, client, "backups", "chat")
	if err != nil {
		log.Fatal(err)
	}
	for _, p := range plan.Partitions {
		fmt.Printf("partition %d: %d objects, offsets %d..%d\n", p.Partition, len(p.Objects), p.First(), p.Last())
	}
	stats, err := mqs3.Restore(ctx, client, "backups", "chat", []string{"localhost:9092"}, "chat-messages")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("restored %d records from %d objects\n", stats.Records, stats.Objects)
}

// Storing records directly, e.g. from a batch handler of a consumer of
// another library: Store returns once they are in the bucket.
func ExampleBackup_Store() {
	ctx := context.Background()
	client, err := mqs3.NewClient(ctx, mqs3.ClientConfig{Endpoint: "http://127.0.0.1:8333", Anonymous: true})
	if err != nil {
		log.Fatal(err)
	}
	backup, err := mqs3.New(client, "backups")
	if err != nil {
		log.Fatal(err)
	}
	recs := []mqs3.Record{
		{Topic: "orders", Partition: 0, Offset: 41, Time: time.Now(), Key: []byte("o-1"), Value: []byte(`{"total":3}`)},
		{Topic: "orders", Partition: 0, Offset: 42, Time: time.Now(), Key: []byte("o-2"), Value: nil}, // a tombstone
	}
	if _, err := backup.Store(ctx, recs); err != nil {
		log.Fatal(err)
	}
}

func ExampleObjectKey() {
	fmt.Println(mqs3.ObjectKey("backups/chat", "chat-messages", 2, 1000, 1999, true))
	o, ok := mqs3.ParseObjectKey("backups/chat", "backups/chat/chat-messages/2/00000000000000001000-00000000000000001999.jsonl.gz")
	fmt.Println(ok, o.Topic, o.Partition, o.First, o.Last, o.Gzip)
	// Output:
	// backups/chat/chat-messages/2/00000000000000001000-00000000000000001999.jsonl.gz
	// true chat-messages 2 1000 1999 true
}
