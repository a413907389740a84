package integration

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

func contextBackground() context.Context { return context.Background() }

func goleakOptions() []goleak.Option { return nil }

// ChatMessage is the event type used throughout the tests.
type ChatMessage struct {
	ID             int    `json:"id"`
	ConversationID string `json:"conversation_id"`
	Body           string `json:"body"`
}

// fastConsumer are options that make group tests quick on a local broker.
func fastConsumer(t testing.TB, extra ...mq.ConsumerOption) []mq.ConsumerOption {
	opts := []mq.ConsumerOption{
		mq.WithLogger(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))),
		mq.WithHeartbeatInterval(100 * time.Millisecond),
		mq.WithSessionTimeout(2 * time.Second),
		mq.WithRebalanceTimeout(5 * time.Second),
		mq.WithCommitInterval(100 * time.Millisecond),
		mq.WithFetchMaxWait(100 * time.Millisecond),
		mq.WithShutdownTimeout(5 * time.Second),
		mq.WithRetryPolicy(mq.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, Multiplier: 2}),
	}
	return append(opts, extra...)
}

func newProducer(t testing.TB, topic string, opts ...mq.ProducerOption) *mq.Producer[ChatMessage] {
	t.Helper()
	p, err := mq.NewProducer[ChatMessage](cluster.Addrs(), topic, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// produceChat writes messages with IDs [from, to) synchronously.
func produceChat(t testing.TB, p *mq.Producer[ChatMessage], from, to int) {
	t.Helper()
	msgs := make([]mq.Message[ChatMessage], 0, to-from)
	for i := from; i < to; i++ {
		m := ChatMessage{ID: i, ConversationID: convID(i), Body: "hello"}
		msgs = append(msgs, mq.Message[ChatMessage]{Key: []byte(m.ConversationID), Value: m})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := p.SendMessages(ctx, msgs...)
	require.NoError(t, err)
}

func convID(i int) string { return "conv-" + string(rune('a'+i%10)) }

// running is a consumer started in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start[T any](c *mq.KafkaConsumer[T]) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	return r
}

// stop cancels the consumer and returns Run's error.
func (r *running) stop(t testing.TB) error {
	t.Helper()
	r.cancel()
	return r.wait(t)
}

func (r *running) wait(t testing.TB) error {
	t.Helper()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("consumer did not stop within 30s")
		return nil
	}
}

// recorder is a handler that records what it saw.
type recorder struct {
	mu    sync.Mutex
	seen  map[int]int // message ID -> times seen
	order map[int][]int64
	total int
}

func newRecorder() *recorder {
	return &recorder{seen: map[int]int{}, order: map[int][]int64{}}
}

func (r *recorder) Handle(_ context.Context, m mq.Message[ChatMessage]) error {
	r.mu.Lock()
	r.seen[m.Value.ID]++
	r.order[m.Partition] = append(r.order[m.Partition], m.Offset)
	r.total++
	r.mu.Unlock()
	return nil
}

// saw reports whether the messages of the given IDs were handled the given
// numbers of times: saw(id, times, id, times, ...).
func (r *recorder) saw(idTimes ...int) func() bool {
	return func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for i := 0; i+1 < len(idTimes); i += 2 {
			if r.seen[idTimes[i]] != idTimes[i+1] {
				return false
			}
		}
		return true
	}
}

func (r *recorder) unique() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.seen)
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

func (r *recorder) duplicates() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := 0
	for _, n := range r.seen {
		d += n - 1
	}
	return d
}

func sum(m map[int]int64) int64 {
	var s int64
	for _, v := range m {
		s += v
	}
	return s
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func atomicAdd(p *int64) int64 { return atomic.AddInt64(p, 1) }
