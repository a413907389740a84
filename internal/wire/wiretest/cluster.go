// Package wiretest is a scripted fake Kafka cluster for unit tests of mq's
// engines: real loopback TCP listeners speaking the Kafka protocol through
// kafka-go's protocol.ReadRequest and protocol.WriteResponse, so that
// engines are tested through the real wire.Pool and wire.Conn.
//
// The cluster answers ApiVersions (every version kafka-go supports),
// Metadata (from a layout the test changes: [Cluster.CreateTopic],
// [Cluster.SetLeader], ...) and FindCoordinator by itself. Everything else
// is answered by handlers the test installs with [Cluster.Handle]. Every
// request is recorded ([Cluster.Requests]) and connections are counted per
// broker ([Cluster.OpenConns]).
package wiretest

import (
	"context"
	"hash/fnv"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/segmentio/kafka-go/protocol"
)

// Cluster is a fake Kafka cluster of brokers with node IDs 0..n-1 on
// loopback. Its methods are safe for concurrent use, from the test and from
// handlers.
type Cluster struct {
	t      testing.TB
	ctx    context.Context // ends on Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // accept loops and connection goroutines

	brokers []*broker

	mu           sync.Mutex
	closed       bool
	handlers     map[protocol.ApiKey]Handler
	topics       map[string][]*partition
	coordinators map[string]int32
	records      []Record
	connSeq      int
}

type broker struct {
	id   int32
	addr string

	// guarded by Cluster.mu
	ln       net.Listener // nil while stopped
	conns    map[*serverConn]struct{}
	accepted int
	acceptWG *sync.WaitGroup // the accept loop of ln
}

type partition struct {
	leader int32 // -1: none
	epoch  int32
}

// Record is one request a broker read.
type Record struct {
	Broker  int32
	Conn    int
	Key     protocol.ApiKey
	Version int16
}

// NewCluster starts n brokers (node IDs 0..n-1) listening on loopback. They
// are closed when the test ends.
func NewCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	if n < 1 {
		t.Fatalf("wiretest: a cluster needs at least one broker, not %d", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		t:            t,
		ctx:          ctx,
		cancel:       cancel,
		handlers:     make(map[protocol.ApiKey]Handler),
		topics:       make(map[string][]*partition),
		coordinators: make(map[string]int32),
	}
	t.Cleanup(c.Close)
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("wiretest: listening for broker %d: %v", i, err)
		}
		b := &broker{id: int32(i), addr: ln.Addr().String(), conns: make(map[*serverConn]struct{})}
		c.brokers = append(c.brokers, b)
		c.mu.Lock()
		c.serve(b, ln)
		c.mu.Unlock()
	}
	return c
}

// Addrs returns the brokers' addresses, indexed by node ID.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.brokers))
	for i, b := range c.brokers {
		out[i] = b.addr
	}
	return out
}

// Addr returns the address of broker id.
func (c *Cluster) Addr(id int32) string { return c.broker(id).addr }

func (c *Cluster) broker(id int32) *broker {
	if id < 0 || int(id) >= len(c.brokers) {
		c.t.Fatalf("wiretest: no broker %d (the cluster has %d)", id, len(c.brokers))
	}
	return c.brokers[id]
}

// Handle installs h for requests of API key on every broker, replacing an
// earlier handler. A nil h removes it.
func (c *Cluster) Handle(key protocol.ApiKey, h Handler) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h == nil {
		delete(c.handlers, key)
		return
	}
	c.handlers[key] = h
}

func (c *Cluster) handler(key protocol.ApiKey) Handler {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.handlers[key]
}

// ----- layout -----

// CreateTopic adds a topic with partitions led round-robin by the brokers
// (partition p by broker p mod n), leader epochs 0.
func (c *Cluster) CreateTopic(name string, partitions int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.topics[name]; ok {
		c.t.Errorf("wiretest: topic %q exists", name)
		return
	}
	ps := make([]*partition, partitions)
	for i := range ps {
		ps[i] = &partition{leader: int32(i % len(c.brokers))}
	}
	c.topics[name] = ps
}

// SetLeader makes broker the leader of a partition and bumps its leader
// epoch.
func (c *Cluster) SetLeader(topic string, p int32, broker int32) {
	c.broker(broker)
	c.mu.Lock()
	defer c.mu.Unlock()
	if pt := c.partition(topic, p); pt != nil {
		pt.leader = broker
		pt.epoch++
	}
}

// SetLeaderless leaves a partition without a leader (Metadata then reports
// LEADER_NOT_AVAILABLE for it) and bumps its leader epoch.
func (c *Cluster) SetLeaderless(topic string, p int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pt := c.partition(topic, p); pt != nil {
		pt.leader = -1
		pt.epoch++
	}
}

// Leader returns the leader (-1: none) and leader epoch of a partition.
func (c *Cluster) Leader(topic string, p int32) (leader, epoch int32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if pt := c.partition(topic, p); pt != nil {
		return pt.leader, pt.epoch
	}
	return -1, -1
}

func (c *Cluster) partition(topic string, p int32) *partition {
	ps, ok := c.topics[topic]
	if !ok || p < 0 || int(p) >= len(ps) {
		c.t.Errorf("wiretest: no partition %s/%d", topic, p)
		return nil
	}
	return ps[p]
}

// SetCoordinator makes broker the coordinator FindCoordinator reports for
// key (a group or transactional id). Without it, the coordinator of a key is
// a broker chosen by a hash of the key.
func (c *Cluster) SetCoordinator(key string, broker int32) {
	c.broker(broker)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.coordinators[key] = broker
}

func (c *Cluster) coordinator(key string) int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.coordinators[key]; ok {
		return id
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int32(h.Sum32() % uint32(len(c.brokers)))
}

// ----- observation -----

// Requests returns every request read so far, in the order read (across
// brokers, the order of reading).
func (c *Cluster) Requests() []Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Record(nil), c.records...)
}

// Count returns how many requests of API key broker has read; broker -1
// counts all brokers.
func (c *Cluster) Count(broker int32, key protocol.ApiKey) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.records {
		if r.Key == key && (broker < 0 || r.Broker == broker) {
			n++
		}
	}
	return n
}

func (c *Cluster) record(r Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.records = append(c.records, r)
}

// OpenConns returns the number of connections to broker open now.
func (c *Cluster) OpenConns(broker int32) int {
	b := c.broker(broker)
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(b.conns)
}

// Accepted returns the number of connections broker has accepted so far.
func (c *Cluster) Accepted(broker int32) int {
	b := c.broker(broker)
	c.mu.Lock()
	defer c.mu.Unlock()
	return b.accepted
}

// ----- faults -----

// KillConns closes every open connection of broker; it keeps accepting new
// ones.
func (c *Cluster) KillConns(broker int32) {
	b := c.broker(broker)
	c.mu.Lock()
	conns := make([]*serverConn, 0, len(b.conns))
	for sc := range b.conns {
		conns = append(conns, sc)
	}
	c.mu.Unlock()
	for _, sc := range conns {
		sc.close()
	}
}

// Stop takes broker down: it stops listening (dials are refused) and closes
// its connections. The cluster's layout and Metadata answers do not change.
func (c *Cluster) Stop(broker int32) {
	b := c.broker(broker)
	c.mu.Lock()
	ln, wg := b.ln, b.acceptWG
	b.ln, b.acceptWG = nil, nil
	c.mu.Unlock()
	if ln != nil {
		_ = ln.Close()
		wg.Wait()
	}
	c.KillConns(broker)
}

// Start brings a stopped broker back on its address.
func (c *Cluster) Start(broker int32) {
	b := c.broker(broker)
	c.mu.Lock()
	defer c.mu.Unlock()
	if b.ln != nil || c.closed {
		return
	}
	ln, err := net.Listen("tcp", b.addr)
	if err != nil {
		c.t.Errorf("wiretest: restarting broker %d on %s: %v", broker, b.addr, err)
		return
	}
	c.serve(b, ln)
}

// serve starts the accept loop of b on ln. c.mu must be held.
func (c *Cluster) serve(b *broker, ln net.Listener) {
	wg := new(sync.WaitGroup)
	b.ln, b.acceptWG = ln, wg
	wg.Add(1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer wg.Done()
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				_ = nc.Close()
				return
			}
			c.connSeq++
			sc := newServerConn(c, b, c.connSeq, nc)
			b.conns[sc] = struct{}{}
			b.accepted++
			c.mu.Unlock()
			sc.start()
		}
	}()
}

func (c *Cluster) forget(b *broker, sc *serverConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(b.conns, sc)
}

// Close stops every broker and waits for their goroutines. NewCluster
// registers it with t.Cleanup.
func (c *Cluster) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	for _, b := range c.brokers {
		c.Stop(b.id)
	}
	c.wg.Wait()
}

// brokerIDs returns the node IDs, ascending.
func (c *Cluster) brokerIDs() []int32 {
	ids := make([]int32, len(c.brokers))
	for i, b := range c.brokers {
		ids[i] = b.id
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

func (c *Cluster) errorf(format string, args ...any) {
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if !closed {
		c.t.Errorf("wiretest: "+format, args...)
	}
}

func splitHostPort(addr string) (string, int32, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	return host, int32(port), err
}
