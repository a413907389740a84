package integration

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// cutter sits between the producer and the broker (as the producer's dial
// function) and breaks connections around produce requests: "lost" ones
// reach the broker whole and the connection is cut when their response
// comes back, before the producer reads it (the broker wrote the batch, the
// producer never hears of it); "torn" ones are cut halfway through the
// request (the broker drops the partial request).
type cutter struct {
	t         testing.TB
	loseEvery int // every n-th produce request loses its response
	tearEvery int // every n-th produce request is torn
	maxCuts   int64

	produces atomic.Int64
	lost     atomic.Int64
	torn     atomic.Int64
}

func (c *cutter) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &cutConn{Conn: nc, c: c}, nil
}

func (c *cutter) cuts() int64 { return c.lost.Load() + c.torn.Load() }

type cutConn struct {
	net.Conn
	c *cutter

	mu    sync.Mutex
	cutAt []bool // per request written, in order: drop its response

	rbuf  []byte // read from the broker, not yet returned
	rleft int    // bytes of the current response frame still to return
}

// Write forwards one request frame (mq's connections write each request in
// one call).
func (cc *cutConn) Write(p []byte) (int, error) {
	if len(p) < 6 || int(binary.BigEndian.Uint32(p))+4 != len(p) {
		cc.c.t.Errorf("cutter: a write of %d bytes is not one request frame", len(p))
		return cc.Conn.Write(p)
	}
	lose := false
	if int16(binary.BigEndian.Uint16(p[4:6])) == 0 { // Produce
		n := cc.c.produces.Add(1)
		switch {
		case cc.c.cuts() >= cc.c.maxCuts:
		case n%int64(cc.c.tearEvery) == 0:
			cc.c.torn.Add(1)
			_, _ = cc.Conn.Write(p[:len(p)/2])
			_ = cc.Conn.Close()
			return 0, io.ErrClosedPipe
		case n%int64(cc.c.loseEvery) == 0:
			cc.c.lost.Add(1)
			lose = true
		}
	}
	cc.mu.Lock()
	cc.cutAt = append(cc.cutAt, lose)
	cc.mu.Unlock()
	return cc.Conn.Write(p)
}

// Read returns the broker's responses, except that it closes the connection
// instead of returning the response of a request marked lost.
func (cc *cutConn) Read(p []byte) (int, error) {
	for {
		if cc.rleft > 0 && len(cc.rbuf) > 0 {
			n := copy(p, cc.rbuf[:min(len(cc.rbuf), cc.rleft)])
			cc.rbuf = cc.rbuf[n:]
			cc.rleft -= n
			return n, nil
		}
		if cc.rleft == 0 && len(cc.rbuf) >= 4 {
			cc.mu.Lock()
			cut := len(cc.cutAt) > 0 && cc.cutAt[0]
			if len(cc.cutAt) > 0 {
				cc.cutAt = cc.cutAt[1:]
			}
			cc.mu.Unlock()
			if cut {
				_ = cc.Conn.Close()
				return 0, io.ErrUnexpectedEOF
			}
			cc.rleft = 4 + int(binary.BigEndian.Uint32(cc.rbuf))
			continue
		}
		buf := make([]byte, 64<<10)
		n, err := cc.Conn.Read(buf)
		cc.rbuf = append(cc.rbuf, buf[:n]...)
		if n == 0 && err != nil {
			return 0, err
		}
	}
}

// sendThroughCuts sends values 0..perKey-1 for each of keys keys, one
// synchronous send at a time per key, through a cutter, and returns what
// was acknowledged per key.
func sendThroughCuts(t *testing.T, topic string, c *cutter, opts ...mq.ProducerOption) map[string]int {
	p, err := mq.NewProducer[[]byte](cluster.Addrs(), topic, append([]mq.ProducerOption{
		mq.WithCodec[[]byte](mq.BytesCodec{}), mq.WithTransport(&kafka.Transport{Dial: c.dial}),
		mq.WithRetryBackoff(10 * time.Millisecond), mq.WithDeliveryTimeout(time.Minute), mq.WithLogger(debugLogger(t)),
	}, opts...)...)
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close()) }()
	const keys, perKey = 16, 150
	acked := make(map[string]int, keys)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for k := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "key-" + strconv.Itoa(k)
			for i := 0; i < perKey; i++ {
				if _, err := p.Send(ctxT(t), []byte(key), []byte(strconv.Itoa(i))); err != nil {
					t.Errorf("key %s, message %d: %v", key, i, err)
					return
				}
				mu.Lock()
				acked[key]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return acked
}

// Against the real broker, with produce responses lost after the broker
// wrote the batch and requests torn halfway, the idempotent producer writes
// every acknowledged message exactly once, in each key's order.
func TestRealBrokerIdempotenceThroughLostResponses(t *testing.T) {
	requireRealBroker(t)
	topic := cluster.NewTopic(t, 4)
	c := &cutter{t: t, loseEvery: 7, tearEvery: 13, maxCuts: 60}
	acked := sendThroughCuts(t, topic, c)
	recs := readAllRecords(t, cluster, topic, 4)
	total := 0
	for _, n := range acked {
		total += n
	}
	t.Logf("%d messages acknowledged through %d produce requests: %d responses lost, %d requests torn; %d records in the log",
		total, c.produces.Load(), c.lost.Load(), c.torn.Load(), len(recs))
	require.Positive(t, c.lost.Load(), "responses were lost")
	require.Positive(t, c.torn.Load(), "requests were torn")
	require.Len(t, recs, total, "0 duplicates")
	checkPerKeyOrder(t, recs, acked)
}

// The same cuts without idempotence write duplicates: the check above is not
// vacuous.
func TestRealBrokerLostResponsesDuplicateWithoutIdempotence(t *testing.T) {
	requireRealBroker(t)
	topic := cluster.NewTopic(t, 4)
	c := &cutter{t: t, loseEvery: 7, tearEvery: 1 << 30, maxCuts: 20}
	acked := sendThroughCuts(t, topic, c, mq.WithIdempotence(false))
	recs := readAllRecords(t, cluster, topic, 4)
	total := 0
	for _, n := range acked {
		total += n
	}
	t.Logf("without idempotence: %d acknowledged, %d responses lost, %d records in the log", total, c.lost.Load(), len(recs))
	assert.Greater(t, len(recs), total, "lost responses were written twice")
}

func debugLogger(t *testing.T) *zap.Logger {
	if os.Getenv("MQ_DEBUG") == "" {
		return nil
	}
	return zaptest.NewLogger(t)
}
