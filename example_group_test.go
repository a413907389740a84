package mq_test

import (
	"context"
	"errors"
	"log"
	"os"
	"time"

	"github.com/mqkit/mq"
)

// A consumer that rebalances incrementally (KIP-429) as a static member
// (KIP-345): when another pod joins, only the partitions that move to it are
// drained and committed; the others keep being processed. Restarted within
// the session timeout, the pod (same instance ID) gets its partitions back
// without any rebalance. With a rack (zone), the assignment prefers
// partitions with a replica in the consumer's zone. Java members with the
// same settings share the group.
func ExampleWithGroupProtocol() {
	pod, _ := os.Hostname() // e.g. "chat-persister-2" in a StatefulSet
	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{"localhost:9092"}, "chat-messages", "chat-persister",
		mq.WithGroupProtocol(mq.GroupProtocolCooperativeSticky),
		mq.WithGroupInstanceID(pod),
		mq.WithSessionTimeout(45*time.Second), // covers a restart
		mq.WithClientRack(os.Getenv("ZONE")),  // prefer partitions with a replica in this zone
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		return store.Upsert(ctx, m.Value)
	}); err != nil {
		log.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// A consumer that refuses to wait for a topic that does not exist.
func ExampleWithMissingTopicsFatal() {
	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{"localhost:9092"}, "chat-mesages", "chat-persister",
		mq.WithMissingTopicsFatal())
	if err != nil {
		log.Fatal(err)
	}
	if err := c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		return store.Upsert(ctx, m.Value)
	}); err != nil {
		log.Fatal(err)
	}
	if err := c.Run(context.Background()); errors.Is(err, mq.ErrTopicNotFound) {
		log.Fatalf("misconfigured: %v", err) // names the topic
	}
}
