package integration

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"
)

// countingObserver records what an Observer is told.
type countingObserver struct {
	mq.NopObserver
	mu        sync.Mutex
	sends     int
	sendErrs  int
	handled   map[string]int
	outcomes  map[mq.Outcome]int
	commits   int
	rebalance int
	traceSeen int
}

type traceKey struct{}

func newCountingObserver() *countingObserver {
	return &countingObserver{handled: map[string]int{}, outcomes: map[mq.Outcome]int{}}
}

func (o *countingObserver) SendStarted(ctx context.Context, _ string, h []mq.Header) (context.Context, []mq.Header) {
	return ctx, append(h, mq.Header{Key: "traceparent", Value: []byte("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")})
}

func (o *countingObserver) SendFinished(_ context.Context, _ string, _ int, _ int64, _ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sends++
	if err != nil {
		o.sendErrs++
	}
}

func (o *countingObserver) ProcessStarted(ctx context.Context, msg mq.MessageInfo) context.Context {
	for _, h := range msg.Headers {
		if h.Key == "traceparent" {
			return context.WithValue(ctx, traceKey{}, string(h.Value))
		}
	}
	return ctx
}

func (o *countingObserver) HandlerFinished(ctx context.Context, _ mq.MessageInfo, handler string, _ int, _ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if err == nil {
		o.handled[handler]++
	}
	if ctx.Value(traceKey{}) != nil {
		o.traceSeen++
	}
}

func (o *countingObserver) ProcessFinished(_ context.Context, _ mq.MessageInfo, out mq.Outcome, _ time.Duration, _ error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.outcomes[out]++
}

func (o *countingObserver) Committed(string, string, int, int64) {
	o.mu.Lock()
	o.commits++
	o.mu.Unlock()
}

func (o *countingObserver) Rebalanced(string, int32, map[string][]int) {
	o.mu.Lock()
	o.rebalance++
	o.mu.Unlock()
}

// The observer sees every send, handler call, outcome and commit; the trace
// context it injects on send reaches the handlers' context; Stats agree.
func TestObserverAndStats(t *testing.T) {
	const n = 50
	topic := cluster.NewTopic(t, 2)
	obs := newCountingObserver()
	p := newProducer(t, topic, mq.WithObserver(obs))
	produceChat(t, p, 0, n)
	ps := p.Stats()
	assert.Equal(t, mq.ProducerStats{Sent: n, Delivered: n}, ps)

	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "g-"+topic,
		fastConsumer(t, mq.WithObserver(obs), mq.WithRecoverer(mq.SkipRecoverer()))...)
	require.NoError(t, err)
	var traced sync.Map
	require.NoError(t, c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		if v, ok := ctx.Value(traceKey{}).(string); ok {
			traced.Store(m.Value.ID, v)
		}
		if m.Value.ID == 3 {
			return mq.Permanent(errors.New("bad"))
		}
		return nil
	}, mq.WithHandlerName("persist")))
	r := start(c)
	require.Eventually(t, func() bool {
		st := c.Stats()
		return st.Consumed >= n && len(st.Partitions) == 2 && st.Partitions[0].Lag+st.Partitions[1].Lag == 0 &&
			st.Partitions[0].Committed >= 0 && st.Partitions[1].Committed >= 0
	}, 20*time.Second, 10*time.Millisecond)
	st := c.Stats()
	require.NoError(t, r.stop(t))

	obs.mu.Lock()
	defer obs.mu.Unlock()
	assert.Equal(t, n, obs.sends)
	assert.Zero(t, obs.sendErrs)
	assert.Equal(t, n-1, obs.handled["persist"])
	assert.Equal(t, map[mq.Outcome]int{mq.OutcomeHandled: n - 1, mq.OutcomeSkipped: 1}, obs.outcomes)
	assert.Equal(t, n, obs.traceSeen, "trace context reached every handler call")
	assert.GreaterOrEqual(t, obs.commits, 2)
	assert.Equal(t, 1, obs.rebalance)
	v, ok := traced.Load(7)
	require.True(t, ok)
	assert.Contains(t, v, "0af7651916cd43dd8448eb211c80319c")

	assert.EqualValues(t, n, st.Consumed)
	assert.EqualValues(t, n-1, st.Handled)
	assert.EqualValues(t, 1, st.Skipped)
	var sumHWM int64
	for _, p := range st.Partitions {
		sumHWM += p.HighWaterMark
		assert.Equal(t, p.HighWaterMark, p.Committed, "lag 0 after a full consume")
	}
	assert.EqualValues(t, n, sumHWM)
}

// Readiness flips when partitions are assigned; liveness flips when a handler
// stalls past the stuck threshold; the HTTP handler reports both.
func TestHealth(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "g-"+topic,
		fastConsumer(t, mq.WithStuckThreshold(200*time.Millisecond), mq.WithShutdownTimeout(time.Second))...)
	require.NoError(t, err)
	release := make(chan struct{})
	holding := make(chan struct{}) // closed once the handler holds message 1
	var holdOnce sync.Once
	require.NoError(t, c.RegisterHandlerFunc(func(ctx context.Context, m mq.Message[ChatMessage]) error {
		if m.Value.ID == 1 {
			holdOnce.Do(func() { close(holding) })
			select {
			case <-release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	}))
	srv := httptest.NewServer(c.HealthHandler())
	defer srv.Close()
	get := func(path string) (int, mq.HealthReport) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		var rep mq.HealthReport
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&rep))
		return resp.StatusCode, rep
	}

	code, _ := get("/readyz")
	assert.Equal(t, http.StatusServiceUnavailable, code, "not ready before Run")
	require.Error(t, c.Ready())

	r := start(c)
	require.Eventually(t, func() bool { return c.Ready() == nil }, 20*time.Second, 10*time.Millisecond)
	code, rep := get("/readyz")
	assert.Equal(t, http.StatusOK, code)
	assert.Len(t, rep.Partitions, 1)
	require.NoError(t, c.Live())

	produceChat(t, newProducer(t, topic), 0, 3) // message 1 stalls
	// Only once message 1 is held does "not live" stay true until the
	// release: before, the partition can look stuck for a moment (lag known,
	// nothing completed yet for the threshold since the assignment) and
	// recover when message 0 completes, which on a replicated cluster made
	// the check below see a live consumer.
	select {
	case <-holding:
	case <-time.After(20 * time.Second):
		t.Fatal("message 1 never reached the handler")
	}
	require.Eventually(t, func() bool { return c.Live() != nil }, 20*time.Second, 10*time.Millisecond)
	code, rep = get("/livez")
	assert.Equal(t, http.StatusServiceUnavailable, code)
	require.Len(t, rep.Stuck, 1)
	assert.Equal(t, topic, rep.Stuck[0].Topic)

	close(release)
	require.Eventually(t, func() bool { return c.Live() == nil }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
	code, _ = get("/livez")
	assert.Equal(t, http.StatusServiceUnavailable, code, "not live after Run returned")
}

// When a synchronous send returns, Stats already count its messages out of
// Buffered (the waiter used to be woken before the count, so a Stats call
// right after Send could still see the last message as buffered).
func TestStatsSettledWhenSyncSendReturns(t *testing.T) {
	topic := cluster.NewTopic(t, 2)
	p := newProducer(t, topic)
	const rounds, per = 300, 4
	for i := 0; i < rounds; i++ {
		produceChat(t, p, i*per, (i+1)*per)
		st := p.Stats()
		require.Equal(t, mq.ProducerStats{Sent: int64((i + 1) * per), Delivered: int64((i + 1) * per)}, st, "after send %d", i)
	}
}

// Every log of a consumer names its group once: the group member's own
// logs added the field again ("joined the group" had "group" twice).
func TestConsumerLogsNameTheGroupOnce(t *testing.T) {
	topic := cluster.NewTopic(t, 1)
	core, logs := observer.New(zap.DebugLevel)
	c, err := mq.NewKafkaConsumer[ChatMessage](cluster.Addrs(), topic, "g-"+topic,
		fastConsumer(t, mq.WithLogger(zap.New(core)))...)
	require.NoError(t, err)
	require.NoError(t, c.RegisterHandlerFunc(func(context.Context, mq.Message[ChatMessage]) error { return nil }))
	r := start(c)
	require.Eventually(t, func() bool { return logs.FilterMessage("joined the group").Len() > 0 }, 20*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))
	require.NotZero(t, logs.Len())
	for _, e := range logs.All() {
		n := 0
		for _, f := range e.Context {
			if f.Key == "group" {
				n++
			}
		}
		assert.Equal(t, 1, n, "%q has %d group fields", e.Message, n)
	}
}
