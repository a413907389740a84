package mq_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/mqkit/mq"
)

// ChatMessage is the value the examples send and receive on the
// "chat-messages" topic. Messages are keyed by ConversationID, so every
// message of a conversation lands on the same partition and is consumed in
// order.
type ChatMessage struct {
	ID             string    `json:"id"`
	ConversationID string    `json:"conversation_id"`
	SenderID       string    `json:"sender_id"`
	Text           string    `json:"text"`
	SentAt         time.Time `json:"sent_at"`
}

// messageStore stands in for the database the persist handler writes to.
type messageStore interface {
	// Upsert stores msg under its ID, so a redelivered message is stored once.
	Upsert(ctx context.Context, msg ChatMessage) error
}

// backupSink stands in for the object store the backup handler appends to.
type backupSink interface {
	Append(ctx context.Context, key string, raw []byte) error
}

var (
	store  messageStore
	backup backupSink
)

func ExampleNewProducer() {
	// Shut down cleanly on Ctrl-C or SIGTERM.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	logger, err := zap.NewProduction()
	if err != nil {
		log.Fatal(err)
	}
	p, err := mq.NewProducer[ChatMessage]([]string{"localhost:9092"}, "chat-messages",
		mq.WithLogger(logger),
		mq.WithCompression(mq.CompressionSnappy),
		mq.WithDeliveryTimeout(10*time.Second),
	)
	if err != nil {
		log.Fatal(err)
	}
	// Close delivers what is still buffered before returning.
	defer func() {
		if err := p.Close(); err != nil {
			logger.Error("closing producer", zap.Error(err))
		}
	}()

	msg := ChatMessage{
		ID:             "msg-1",
		ConversationID: "conv-42",
		SenderID:       "alice",
		Text:           "Hi Bob!",
		SentAt:         time.Now(),
	}
	// Keying by conversation keeps each conversation in order.
	res, err := p.Send(ctx, []byte(msg.ConversationID), msg,
		mq.Header{Key: "content-type", Value: []byte("application/json")})
	if err != nil {
		logger.Error("send failed", zap.Error(err))
		return
	}
	fmt.Printf("stored at %s[%d]@%d\n", res.Topic, res.Partition, res.Offset)
}

func ExampleProducer_SendAsync() {
	ctx := context.Background()
	p, err := mq.NewProducer[ChatMessage]([]string{"localhost:9092"}, "chat-messages",
		mq.WithBatchTimeout(5*time.Millisecond), // let asynchronous sends share batches
		mq.WithMaxBufferedRecords(50000),        // beyond this, SendAsync blocks
	)
	if err != nil {
		log.Fatal(err)
	}
	defer func() {
		// Close reports the messages that could not be delivered in time.
		if err := p.Close(); err != nil {
			log.Printf("close: %v", err)
		}
	}()

	for i := range 1000 {
		msg := ChatMessage{
			ID:             fmt.Sprintf("msg-%d", i),
			ConversationID: fmt.Sprintf("conv-%d", i%10),
			SenderID:       "load-generator",
			Text:           "ping",
			SentAt:         time.Now(),
		}
		err := p.SendAsync(ctx, mq.Message[ChatMessage]{Key: []byte(msg.ConversationID), Value: msg},
			// Called exactly once per buffered message, on the producer's
			// sender goroutine: keep it short.
			func(m mq.Message[ChatMessage], err error) {
				if err != nil {
					log.Printf("message %s not delivered: %v", m.Value.ID, err)
				}
			})
		if err != nil {
			// Not buffered (encoding failed, ctx ended or producer closed):
			// the callback will not be called for it.
			log.Printf("message %s not sent: %v", msg.ID, err)
		}
	}
	// Wait for every outcome before moving on.
	if err := p.Flush(ctx); err != nil {
		log.Printf("flush: %v", err)
	}
}

func ExampleNewKafkaConsumer() {
	// Cancelling ctx (Ctrl-C, SIGTERM) makes Run finish in-flight messages,
	// commit them, leave the group and return nil.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{"localhost:9092"}, "chat-messages", "chat-persister",
		mq.WithShutdownTimeout(15*time.Second),
		mq.WithRetryPolicy(mq.RetryPolicy{
			MaxAttempts:    10,
			InitialBackoff: 200 * time.Millisecond,
			MaxBackoff:     10 * time.Second,
			Multiplier:     2,
			Jitter:         0.2,
		}),
	)
	if err != nil {
		log.Fatal(err)
	}

	persist := mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
		return store.Upsert(ctx, m.Value) // idempotent: delivery is at-least-once
	})
	backupRaw := mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
		return backup.Append(ctx, m.Value.ConversationID, m.Raw)
	})
	if err := c.RegisterHandler(persist, mq.WithHandlerName("persist")); err != nil {
		log.Fatal(err)
	}
	if err := c.RegisterHandler(backupRaw, mq.WithHandlerName("backup")); err != nil {
		log.Fatal(err)
	}

	err = c.Run(ctx)
	var herr *mq.HandlerError
	var derr *mq.DecodeError
	switch {
	case err == nil:
		log.Print("consumer stopped")
	case errors.As(err, &herr):
		log.Fatalf("handler %s gave up on offset %d of partition %d: %v", herr.Handler, herr.Offset, herr.Partition, herr.Err)
	case errors.As(err, &derr):
		log.Fatalf("poison message at %s[%d]@%d: %v", derr.Topic, derr.Partition, derr.Offset, derr.Err)
	default:
		log.Fatal(err)
	}
}

func ExampleKafkaConsumer_RegisterHandler() {
	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{"localhost:9092"}, "chat-messages", "chat-backup")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	// Every message goes to every handler, in registration order. A handler
	// that fails is retried on its own; the message is committed once all
	// of them succeeded.
	err = c.RegisterHandler(mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
		return store.Upsert(ctx, m.Value)
	}), mq.WithHandlerName("persist"))
	if err != nil {
		log.Fatal(err)
	}

	// The backup may be slow to recover: give it a longer retry policy.
	err = c.RegisterHandler(mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
		return backup.Append(ctx, m.Value.ConversationID, m.Raw)
	}), mq.WithHandlerName("backup"), mq.WithHandlerRetryPolicy(mq.RetryPolicy{
		MaxAttempts:    20,
		InitialBackoff: time.Second,
		MaxBackoff:     30 * time.Second,
		Multiplier:     2,
		Jitter:         0.2,
	}))
	if err != nil {
		log.Fatal(err)
	}

	if err := c.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func ExampleChain() {
	// logging prints around the handler it wraps.
	logging := func(name string) mq.Middleware[ChatMessage] {
		return func(next mq.Handler[ChatMessage]) mq.Handler[ChatMessage] {
			return mq.HandlerFunc[ChatMessage](func(ctx context.Context, m mq.Message[ChatMessage]) error {
				fmt.Println(name, "before", m.Value.ID)
				err := next.Handle(ctx, m)
				fmt.Println(name, "after:", err)
				return err
			})
		}
	}
	persist := mq.HandlerFunc[ChatMessage](func(_ context.Context, m mq.Message[ChatMessage]) error {
		if m.Value.Text == "" {
			panic("empty message")
		}
		fmt.Println("persist", m.Value.ID)
		return nil
	})

	// The first middleware is the outermost.
	h := mq.Chain(persist, logging("outer"), logging("inner"), mq.CatchPanics[ChatMessage]())

	ctx := context.Background()
	_ = h.Handle(ctx, mq.Message[ChatMessage]{Value: ChatMessage{ID: "msg-1", Text: "hello"}})
	err := h.Handle(ctx, mq.Message[ChatMessage]{Value: ChatMessage{ID: "msg-2"}})
	var perr *mq.PanicError
	fmt.Println("recovered:", errors.As(err, &perr))
	// Output:
	// outer before msg-1
	// inner before msg-1
	// persist msg-1
	// inner after: <nil>
	// outer after: <nil>
	// outer before msg-2
	// inner before msg-2
	// inner after: mq: handler panicked: empty message
	// outer after: mq: handler panicked: empty message
	// recovered: true
}

func ExampleJSONCodec() {
	codec := mq.JSONCodec[ChatMessage]{DisallowUnknownFields: true}

	data, err := codec.Encode(ChatMessage{
		ID:             "msg-1",
		ConversationID: "conv-42",
		SenderID:       "alice",
		Text:           "Hi Bob!",
		SentAt:         time.Date(2024, 5, 1, 12, 30, 0, 0, time.UTC),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(string(data))

	msg, err := codec.Decode(data)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.SenderID, "said", msg.Text)

	// With DisallowUnknownFields, unexpected fields make a poison message.
	_, err = codec.Decode([]byte(`{"id":"msg-2","emoji":"👍"}`))
	fmt.Println(err)

	// An empty payload is an error, never a zero value.
	_, err = codec.Decode(nil)
	fmt.Println(err)
	// Output:
	// {"id":"msg-1","conversation_id":"conv-42","sender_id":"alice","text":"Hi Bob!","sent_at":"2024-05-01T12:30:00Z"}
	// alice said Hi Bob!
	// json: unknown field "emoji"
	// mq: json: empty payload
}

// A batch handler storing each batch in one transaction. A message it
// cannot store ends the batch early with BatchFailedAt: the messages before
// it are committed, it is retried (and recovered) on its own, and the rest
// come back in the next batch.
func ExampleKafkaConsumer_RegisterBatchHandler() {
	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{"localhost:9092"}, "chat-messages", "chat-archive",
		mq.WithBatchMaxMessages(500), mq.WithBatchLinger(50*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	err = c.RegisterBatchHandler(mq.BatchHandlerFunc[ChatMessage](func(ctx context.Context, msgs []mq.Message[ChatMessage]) error {
		for i, m := range msgs {
			if err := store.Upsert(ctx, m.Value); err != nil {
				return mq.BatchFailedAt(i, err) // msgs[:i] are stored
			}
		}
		return nil
	}), mq.WithHandlerName("archive"))
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// BatchFailedAt is a *BatchFailedError; its Err is what the retry policy
// and the recoverer see.
func ExampleBatchFailedAt() {
	err := mq.BatchFailedAt(3, mq.Permanent(errors.New("invalid row")))
	var bf *mq.BatchFailedError
	if errors.As(err, &bf) {
		fmt.Println(bf.Index, mq.IsPermanent(err))
	}
	// Output: 3 true
}

// Pausing a partition while its downstream system is down, and resuming
// it when it is back: the consumer stays in its group meanwhile.
func ExampleKafkaConsumer_Pause() {
	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{"localhost:9092"}, "chat-messages", "chat-service")
	if err != nil {
		log.Fatal(err)
	}
	if err := c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		return store.Upsert(ctx, m.Value)
	}); err != nil {
		log.Fatal(err)
	}
	go func() {
		for range time.Tick(10 * time.Second) {
			if downstreamHealthy() {
				c.Resume() // every paused partition, where it stopped
			} else {
				c.Pause() // every partition the consumer owns
			}
		}
	}()
	if err := c.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

func downstreamHealthy() bool { return true }

// Replaying the last hour of every assigned partition: seeks made in the
// assigned hook apply as the partitions start.
func ExampleKafkaConsumer_SeekToTime() {
	ctx := context.Background()
	var c *mq.KafkaConsumer[ChatMessage]
	c, err := mq.NewKafkaConsumer[ChatMessage]([]string{"localhost:9092"}, "chat-messages", "chat-replay",
		mq.WithOnAssigned(func(assigned map[string][]int) {
			for _, p := range assigned["chat-messages"] {
				if err := c.SeekToTime(ctx, "chat-messages", p, time.Now().Add(-time.Hour)); err != nil {
					log.Print(err)
				}
			}
		}))
	if err != nil {
		log.Fatal(err)
	}
	if err := c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		return store.Upsert(ctx, m.Value)
	}); err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
}

// Seeking an owned partition while the consumer runs.
func ExampleKafkaConsumer_Seek() {
	var c *mq.KafkaConsumer[ChatMessage] // running
	if err := c.Seek("chat-messages", 3, 1200); errors.Is(err, mq.ErrNotAssigned) {
		log.Print("partition 3 is not ours")
	}
}
