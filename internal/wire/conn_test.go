package wire_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/mqkit/mq/internal/wire/wiretest"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/apiversions"
	"github.com/segmentio/kafka-go/protocol/fetch"
	"github.com/segmentio/kafka-go/protocol/findcoordinator"
	"github.com/segmentio/kafka-go/protocol/heartbeat"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"github.com/segmentio/kafka-go/protocol/produce"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// waitFor bounds every wait of these tests for something that must happen.
const waitFor = 10 * time.Second

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func dial(t *testing.T, d *wire.Dialer, addr string) *wire.Conn {
	t.Helper()
	c, err := d.DialConn(ctxT(t), addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// echoCoordinator answers FindCoordinator with the request's key as host
// and the number in it as node ID, so that each response names its request.
func echoCoordinator(r *wiretest.Request) wiretest.Response {
	key := r.Msg.(*findcoordinator.Request).Key
	id, _ := strconv.Atoi(key)
	return wiretest.Reply(&findcoordinator.Response{NodeID: int32(id), Host: "k" + key, Port: 1})
}

func coordReq(i int) *findcoordinator.Request {
	return &findcoordinator.Request{Key: strconv.Itoa(i)}
}

func requireCoord(t *testing.T, i int, res protocol.Message, err error) {
	t.Helper()
	require.NoError(t, err, "request %d", i)
	r := res.(*findcoordinator.Response)
	require.Equal(t, int32(i), r.NodeID, "response to request %d", i)
	require.Equal(t, "k"+strconv.Itoa(i), r.Host, "response to request %d", i)
}

func TestPipelinedInOrder(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	gate := make(chan struct{})
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		return echoCoordinator(r).Until(gate)
	})
	c := dial(t, &wire.Dialer{ClientID: "test"}, cl.Addr(0))

	const n = 50
	pending := make([]*wire.Pending, n)
	for i := range pending {
		p, err := c.Send(ctxT(t), coordReq(i))
		require.NoError(t, err)
		pending[i] = p
	}
	// Every request reached the broker before any response was written:
	// they were in flight together on one connection.
	require.Eventually(t, func() bool { return cl.Count(0, protocol.FindCoordinator) == n }, waitFor, time.Millisecond)
	close(gate)
	for i, p := range pending {
		res, err := p.Wait(ctxT(t))
		requireCoord(t, i, res, err)
	}
	assert.Equal(t, 1, cl.Accepted(0))
}

func TestConcurrentSendsMatchResponses(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, echoCoordinator)
	c := dial(t, &wire.Dialer{}, cl.Addr(0))

	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g * 100; i < g*100+40; i++ {
				res, err := c.RoundTrip(ctxT(t), coordReq(i))
				if !assert.NoError(t, err) {
					return
				}
				r := res.(*findcoordinator.Response)
				assert.Equal(t, int32(i), r.NodeID)
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 8*40, cl.Count(0, protocol.FindCoordinator))
	assert.Equal(t, 1, cl.Accepted(0))
}

func TestWaitCancelLeavesConnUsable(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	gate := make(chan struct{})
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		if r.Msg.(*findcoordinator.Request).Key == "0" {
			return echoCoordinator(r).Until(gate)
		}
		return echoCoordinator(r)
	})
	c := dial(t, &wire.Dialer{}, cl.Addr(0))

	first, err := c.Send(ctxT(t), coordReq(0))
	require.NoError(t, err)
	second, err := c.Send(ctxT(t), coordReq(1))
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	_, err = first.Wait(ctx)
	require.ErrorIs(t, err, context.Canceled)

	close(gate)
	res, err := second.Wait(ctxT(t))
	requireCoord(t, 1, res, err)
	res, err = c.RoundTrip(ctxT(t), coordReq(2))
	requireCoord(t, 2, res, err)
	require.NoError(t, c.Err())
	// The abandoned response was read too: a later Wait still has it.
	res, err = first.Wait(ctxT(t))
	requireCoord(t, 0, res, err)
}

func TestOverdueResponseClosesConn(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	never := make(chan struct{})
	defer close(never)
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		return echoCoordinator(r).Until(never)
	})
	c := dial(t, &wire.Dialer{ResponseGrace: 20 * time.Millisecond}, cl.Addr(0))

	// The second request has no deadline: the first one's overdue response
	// fails it too.
	withoutDeadline, err := c.Send(context.Background(), coordReq(0))
	require.NoError(t, err)
	withDeadline, err := c.Send(deadlineOnly{context.Background(), time.Now().Add(30 * time.Millisecond)}, coordReq(1))
	require.NoError(t, err)

	_, err = withoutDeadline.Wait(ctxT(t))
	require.ErrorIs(t, err, wire.ErrConnClosed)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
	var ne net.Error
	require.ErrorAs(t, err, &ne, "classifiable as a network timeout")
	require.True(t, ne.Timeout())
	require.Contains(t, err.Error(), "no response to FindCoordinator")

	_, err = withDeadline.Wait(ctxT(t))
	require.ErrorIs(t, err, wire.ErrConnClosed)
	select {
	case <-c.Done():
	default:
		t.Fatal("Done is open after the connection was closed")
	}
	require.ErrorIs(t, c.Err(), wire.ErrConnClosed)
	_, err = c.Send(ctxT(t), coordReq(2))
	require.ErrorIs(t, err, wire.ErrConnClosed)
	require.Eventually(t, func() bool { return cl.OpenConns(0) == 0 }, waitFor, time.Millisecond)
}

// deadlineOnly is a context with a deadline that never ends: a request sent
// with it has a deadline, whatever the time Send takes.
type deadlineOnly struct {
	context.Context
	deadline time.Time
}

func (c deadlineOnly) Deadline() (time.Time, bool) { return c.deadline, true }

func TestResponseWithinDeadlineKeepsConn(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, echoCoordinator)
	c := dial(t, &wire.Dialer{ResponseGrace: time.Millisecond}, cl.Addr(0))
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(ctxT(t), 20*time.Second)
		res, err := c.RoundTrip(ctx, coordReq(i))
		cancel()
		requireCoord(t, i, res, err)
	}
	require.NoError(t, c.Err())
}

func TestBrokenConnFailsAllInFlight(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	never := make(chan struct{})
	defer close(never)
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		return echoCoordinator(r).Until(never)
	})
	c := dial(t, &wire.Dialer{}, cl.Addr(0))

	var pending []*wire.Pending
	for i := 0; i < 3; i++ {
		p, err := c.Send(ctxT(t), coordReq(i))
		require.NoError(t, err)
		pending = append(pending, p)
	}
	require.Eventually(t, func() bool { return cl.Count(0, protocol.FindCoordinator) == 3 }, waitFor, time.Millisecond)
	cl.KillConns(0)
	for i, p := range pending {
		_, err := p.Wait(ctxT(t))
		require.ErrorIs(t, err, wire.ErrConnClosed, "request %d", i)
		var op *net.OpError
		require.True(t, errors.Is(err, io.EOF) || errors.As(err, &op), "request %d: the cause stays in the chain: %v", i, err)
	}
	<-c.Done()
	_, err := c.Send(ctxT(t), coordReq(9))
	require.ErrorIs(t, err, wire.ErrConnClosed)
}

func TestLostResponse(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		if r.Msg.(*findcoordinator.Request).Key == "1" {
			return wiretest.Drop()
		}
		return echoCoordinator(r)
	})
	c := dial(t, &wire.Dialer{}, cl.Addr(0))
	p0, err := c.Send(ctxT(t), coordReq(0))
	require.NoError(t, err)
	p1, err := c.Send(ctxT(t), coordReq(1))
	require.NoError(t, err)

	res, err := p0.Wait(ctxT(t))
	requireCoord(t, 0, res, err)
	_, err = p1.Wait(ctxT(t))
	require.ErrorIs(t, err, wire.ErrConnClosed)
	require.ErrorIs(t, err, io.EOF)
}

func TestCloseFailsInFlight(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	never := make(chan struct{})
	defer close(never)
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		return echoCoordinator(r).Until(never)
	})
	c := dial(t, &wire.Dialer{}, cl.Addr(0))
	p, err := c.Send(ctxT(t), coordReq(0))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	_, err = p.Wait(ctxT(t))
	require.ErrorIs(t, err, wire.ErrConnClosed)
	require.Contains(t, err.Error(), "closed by the client")
	require.NoError(t, c.Close(), "Close twice")
}

func TestSendCanceledBeforeWrite(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, echoCoordinator)
	c := dial(t, &wire.Dialer{}, cl.Addr(0))
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	_, err := c.Send(ctx, coordReq(0))
	require.ErrorIs(t, err, context.Canceled)
	res, err := c.RoundTrip(ctxT(t), coordReq(1))
	requireCoord(t, 1, res, err)
	assert.Equal(t, 1, cl.Count(0, protocol.FindCoordinator), "the canceled request was never written")
}

func TestNoResponseRequests(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, echoCoordinator)
	cl.Handle(protocol.Produce, func(r *wiretest.Request) wiretest.Response {
		if r.Msg.(*produce.Request).Acks == 0 {
			return wiretest.Default() // nothing is written for acks=0
		}
		return wiretest.Reply(&produce.Response{})
	})
	c := dial(t, &wire.Dialer{}, cl.Addr(0))

	req := func() *produce.Request { // a record reader is consumed by encoding
		return &produce.Request{Acks: 0, Timeout: 1000, Topics: []produce.RequestTopic{{
			Topic: "t",
			Partitions: []produce.RequestPartition{{
				Partition: 0,
				RecordSet: protocol.RecordSet{Version: 2, Records: protocol.NewRecordReader(protocol.Record{Value: protocol.NewBytes([]byte("v"))})},
			}},
		}}}
	}
	for i := 0; i < 3; i++ {
		p, err := c.Send(ctxT(t), req())
		require.NoError(t, err)
		select {
		case <-p.Done():
		default:
			t.Fatal("an acks=0 request must complete when written")
		}
		res, err := p.Wait(ctxT(t))
		require.NoError(t, err)
		require.Nil(t, res)
	}
	// Requests with responses still match theirs afterwards.
	res, err := c.RoundTrip(ctxT(t), coordReq(7))
	requireCoord(t, 7, res, err)
	assert.Equal(t, 3, cl.Count(0, protocol.Produce))
}

func TestSendRawBody(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	body := []byte("any bytes the broker wrote, \x00\x01\x02 not decoded")
	cl.Handle(protocol.Fetch, func(r *wiretest.Request) wiretest.Response { return wiretest.Raw(body) })
	c := dial(t, &wire.Dialer{}, cl.Addr(0))

	p, err := c.SendRaw(ctxT(t), &fetch.Request{MaxWaitTime: 100, Topics: []fetch.RequestTopic{{Topic: "t"}}})
	require.NoError(t, err)
	res, err := p.Wait(ctxT(t))
	require.NoError(t, err)
	raw := res.(*wire.RawResponse)
	v, _ := c.Version(protocol.Fetch)
	assert.Equal(t, body, raw.Body)
	assert.Equal(t, v, raw.Version)
	assert.Equal(t, protocol.Fetch, raw.ApiKey())
}

// The body of a flexible response starts after the header's tagged fields.
// Heartbeat's response is ThrottleTimeMs int32 (v1+), ErrorCode int16, and
// from v4 a tagged-field buffer: the Kafka protocol's layout, written here by
// hand so that kafka-go's encoding is not what checks itself.
func TestSendRawHeaderVersions(t *testing.T) {
	for _, tc := range []struct {
		maxVersion int16
		body       []byte
	}{
		{4, []byte{0, 0, 0, 7, 0, 27, 0}}, // flexible: header and body end with empty tagged fields
		{3, []byte{0, 0, 0, 7, 0, 27}},
	} {
		t.Run(fmt.Sprintf("v%d", tc.maxVersion), func(t *testing.T) {
			cl := wiretest.NewCluster(t, 1)
			cl.Handle(protocol.ApiVersions, func(r *wiretest.Request) wiretest.Response {
				res := cl.BuiltIn(r).(*apiversions.Response)
				for i := range res.ApiKeys {
					if res.ApiKeys[i].ApiKey == int16(protocol.Heartbeat) {
						res.ApiKeys[i].MaxVersion = tc.maxVersion
					}
				}
				return wiretest.Reply(res)
			})
			cl.Handle(protocol.Heartbeat, func(r *wiretest.Request) wiretest.Response {
				return wiretest.Raw(tc.body)
			})
			c := dial(t, &wire.Dialer{}, cl.Addr(0))
			v, ok := c.Version(protocol.Heartbeat)
			require.True(t, ok)
			require.Equal(t, tc.maxVersion, v)

			p, err := c.SendRaw(ctxT(t), &heartbeat.Request{GroupID: "g"})
			require.NoError(t, err)
			res, err := p.Wait(ctxT(t))
			require.NoError(t, err)
			require.Equal(t, tc.body, res.(*wire.RawResponse).Body)
		})
	}
}

func TestUndecodableResponseFailsOnlyItsRequest(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, func(r *wiretest.Request) wiretest.Response {
		if r.Msg.(*findcoordinator.Request).Key == "0" {
			return wiretest.Raw([]byte{0, 1}) // far too short
		}
		return echoCoordinator(r)
	})
	c := dial(t, &wire.Dialer{}, cl.Addr(0))
	_, err := c.RoundTrip(ctxT(t), coordReq(0))
	require.Error(t, err)
	require.NotErrorIs(t, err, wire.ErrConnClosed)
	res, err := c.RoundTrip(ctxT(t), coordReq(1))
	requireCoord(t, 1, res, err)
}

func TestVersionNegotiation(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.ApiVersions, func(r *wiretest.Request) wiretest.Response {
		return wiretest.Reply(&apiversions.Response{ApiKeys: []apiversions.ApiKeyResponse{
			{ApiKey: int16(protocol.Metadata), MinVersion: 0, MaxVersion: 5},
			{ApiKey: int16(protocol.Fetch), MinVersion: 12, MaxVersion: 17},  // all above kafka-go's v11
			{ApiKey: int16(protocol.Produce), MinVersion: 3, MaxVersion: 12}, // kafka-go: up to v8
		}})
	})
	c := dial(t, &wire.Dialer{}, cl.Addr(0))

	v, ok := c.Version(protocol.Metadata)
	assert.True(t, ok)
	assert.Equal(t, int16(5), v)
	v, ok = c.Version(protocol.Produce)
	assert.True(t, ok)
	assert.Equal(t, int16(8), v)
	_, ok = c.Version(protocol.Fetch)
	assert.False(t, ok)
	_, ok = c.Version(protocol.Heartbeat)
	assert.False(t, ok, "an API the broker did not list")

	_, err := c.Send(ctxT(t), &fetch.Request{})
	require.ErrorIs(t, err, kafka.UnsupportedVersion)
	require.NoError(t, c.Err(), "an unsupported request does not break the connection")

	res, err := c.RoundTrip(ctxT(t), &metadata.Request{})
	require.NoError(t, err)
	require.IsType(t, &metadata.Response{}, res)
	assert.Equal(t, []int16{0, 5}, versionsSeen(cl, protocol.ApiVersions, protocol.Metadata))
}

// versionsSeen returns the versions of the requests of the given APIs, in
// the order the broker read them.
func versionsSeen(cl *wiretest.Cluster, keys ...protocol.ApiKey) []int16 {
	var out []int16
	for _, r := range cl.Requests() {
		for _, k := range keys {
			if r.Key == k {
				out = append(out, r.Version)
			}
		}
	}
	return out
}

// vectoredCoord is a FindCoordinator request (v1, v2) that encodes its own
// body, in three buffers.
type vectoredCoord struct{ key string }

func (r *vectoredCoord) ApiKey() protocol.ApiKey { return protocol.FindCoordinator }

func (r *vectoredCoord) Body(v int16) (net.Buffers, error) {
	if v < 1 || v > 2 {
		return nil, fmt.Errorf("v%d not encoded here", v)
	}
	return net.Buffers{{byte(len(r.key) >> 8), byte(len(r.key))}, []byte(r.key), {0}}, nil // key, key type 0
}

// Requests that encode their own body leave in one vectored write with the
// request header Conn writes, and match their responses among ordinary
// requests pipelined with them. A body that cannot be encoded fails its
// Send before anything is written, and the connection stays usable.
func TestVectoredRequests(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, echoCoordinator)
	c := dial(t, &wire.Dialer{ClientID: "vectored-test"}, cl.Addr(0))

	const n = 20
	pending := make([]*wire.Pending, n)
	for i := range pending {
		var err error
		if i%2 == 0 {
			pending[i], err = c.SendMax(ctxT(t), &vectoredCoord{key: strconv.Itoa(i)}, 2, false)
		} else {
			pending[i], err = c.Send(ctxT(t), coordReq(i))
		}
		require.NoError(t, err)
	}
	for i, p := range pending {
		res, err := p.Wait(ctxT(t))
		requireCoord(t, i, res, err)
	}

	_, err := c.SendMax(ctxT(t), &vectoredCoord{key: "x"}, 0, false)
	require.ErrorContains(t, err, "v0 not encoded here")
	res, err := c.RoundTrip(ctxT(t), coordReq(99))
	requireCoord(t, 99, res, err)
	assert.Equal(t, n+1, cl.Count(0, protocol.FindCoordinator))
	assert.Equal(t, 1, cl.Accepted(0))
}

// frameWrites is a connection that checks that every Write is one whole
// request frame (size prefix included), as tools that cut connections
// between requests expect.
type frameWrites struct {
	net.Conn
	mu     sync.Mutex
	writes int
	torn   []int
}

func (f *frameWrites) Write(p []byte) (int, error) {
	f.mu.Lock()
	f.writes++
	if len(p) < 4 || int(p[0])<<24|int(p[1])<<16|int(p[2])<<8|int(p[3]) != len(p)-4 {
		f.torn = append(f.torn, len(p))
	}
	f.mu.Unlock()
	return f.Conn.Write(p)
}

// On a connection that is not plain TCP (TLS, or wrapped by a custom Dial),
// a vectored request is written with one Write, like any other request.
func TestVectoredRequestOneWriteOnWrappedConn(t *testing.T) {
	cl := wiretest.NewCluster(t, 1)
	cl.Handle(protocol.FindCoordinator, echoCoordinator)
	var fw *frameWrites
	d := &wire.Dialer{ClientID: "wrapped", Dial: func(ctx context.Context, network, addr string) (net.Conn, error) {
		nc, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		fw = &frameWrites{Conn: nc}
		return fw, nil
	}}
	c := dial(t, d, cl.Addr(0))
	fw.mu.Lock()
	before := fw.writes
	fw.mu.Unlock()
	for i := 0; i < 5; i++ {
		p, err := c.SendMax(ctxT(t), &vectoredCoord{key: strconv.Itoa(i)}, 2, false)
		require.NoError(t, err)
		res, err := p.Wait(ctxT(t))
		requireCoord(t, i, res, err)
	}
	fw.mu.Lock()
	defer fw.mu.Unlock()
	assert.Equal(t, before+5, fw.writes, "one Write per request")
	assert.Empty(t, fw.torn, "writes that were not one whole frame")
}
