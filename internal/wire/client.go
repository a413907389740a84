package wire

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/mqkit/mq/internal/backoff"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	"github.com/segmentio/kafka-go/protocol/findcoordinator"
	"github.com/segmentio/kafka-go/protocol/metadata"
)

// DefaultRequestTimeout bounds each attempt of a [Client] request when the
// caller's context has no earlier deadline.
const DefaultRequestTimeout = 30 * time.Second

// Coordinator key types of FindCoordinator.
const (
	CoordinatorGroup       int8 = 0
	CoordinatorTransaction int8 = 1
)

// coordinatorBackoff spaces the retries of FindCoordinator while the
// coordinator is not available yet.
var coordinatorBackoff = backoff.Policy{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2, Jitter: 0.2}

// Client is the cluster-level view built on a [Network]: bootstrap, fresh
// metadata, coordinators. It caches nothing but the broker addresses of the
// last metadata it saw, to know whom else to ask. It is safe for concurrent
// use.
type Client struct {
	net       Network
	bootstrap []string

	// RequestTimeout bounds each attempt (one broker) of Metadata,
	// FindCoordinator and Any, so that a broker that hangs does not keep the
	// others from being asked. Zero means DefaultRequestTimeout. Set it
	// before the first call.
	RequestTimeout time.Duration

	mu        sync.Mutex
	brokers   map[int32]Broker // from the last metadata
	preferred string           // the address that answered last
}

// NewClient returns a client that reaches the cluster through n, starting
// from the bootstrap addresses.
func NewClient(n Network, bootstrap []string) *Client {
	return &Client{net: n, bootstrap: append([]string(nil), bootstrap...)}
}

// Metadata fetches fresh metadata for topics (nil: all topics) from a live
// broker: the one that answered last, the bootstrap addresses, then the
// brokers of the last metadata, moving on when one fails. It never answers
// from a cache. A topic or partition error is reported in the result, not
// as the error.
func (c *Client) Metadata(ctx context.Context, topics []string) (*Metadata, error) {
	var md *Metadata
	err := c.exchange(ctx, "metadata", func(ctx context.Context, conn *Conn) error {
		v, ok := conn.Version(protocol.Metadata)
		if !ok || v < 1 {
			return fmt.Errorf("wire: %s: no Metadata version of v1..v8: %w", conn.Addr(), kafka.UnsupportedVersion)
		}
		req := &metadata.Request{TopicNames: topics}
		if topics != nil && len(topics) == 0 {
			req.TopicNames = []string{} // none, not all
		}
		res, err := conn.RoundTrip(ctx, req)
		if err != nil {
			return err
		}
		md = makeMetadata(res.(*metadata.Response), v)
		return nil
	})
	if err != nil {
		return nil, err
	}
	known := make(map[int32]Broker, len(md.Brokers)) // the caller may change md
	for id, b := range md.Brokers {
		known[id] = b
	}
	c.mu.Lock()
	c.brokers = known
	c.mu.Unlock()
	return md, nil
}

// BrokerAddr returns the address of broker id in the last metadata seen.
func (c *Client) BrokerAddr(id int32) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.brokers[id]
	return b.Addr, ok
}

// FindCoordinator returns the node ID and address of the coordinator of a
// group (keyType [CoordinatorGroup]) or transactional id
// ([CoordinatorTransaction]). COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR and
// COORDINATOR_LOAD_IN_PROGRESS are retried with backoff until ctx ends.
func (c *Client) FindCoordinator(ctx context.Context, key string, keyType int8) (int32, string, error) {
	var last error // the last retriable error code
	for attempt := 1; ; attempt++ {
		var res *findcoordinator.Response
		err := c.exchange(ctx, "find coordinator", func(ctx context.Context, conn *Conn) error {
			if v, ok := conn.Version(protocol.FindCoordinator); !ok || (keyType != CoordinatorGroup && v < 1) {
				return fmt.Errorf("wire: %s: no FindCoordinator version for key type %d: %w",
					conn.Addr(), keyType, kafka.UnsupportedVersion)
			}
			m, err := conn.RoundTrip(ctx, &findcoordinator.Request{Key: key, KeyType: keyType})
			if err != nil {
				return err
			}
			res = m.(*findcoordinator.Response)
			return nil
		})
		if err != nil {
			if last != nil {
				err = fmt.Errorf("%w (after %w)", err, last)
			}
			return 0, "", err
		}
		if res.ErrorCode == 0 {
			return res.NodeID, net.JoinHostPort(res.Host, strconv.Itoa(int(res.Port))), nil
		}
		kerr := kafka.Error(res.ErrorCode)
		err = fmt.Errorf("wire: coordinator of %q: %w", key, kerr)
		if res.ErrorMessage != "" {
			err = fmt.Errorf("wire: coordinator of %q: %w: %s", key, kerr, res.ErrorMessage)
		}
		switch kerr {
		case kafka.GroupCoordinatorNotAvailable, kafka.NotCoordinatorForGroup, kafka.GroupLoadInProgress:
		default:
			return 0, "", err
		}
		last = err
		t := time.NewTimer(coordinatorBackoff.Delay(attempt))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return 0, "", fmt.Errorf("%w (%w)", err, ctx.Err())
		}
	}
}

// Any returns a control connection to some live broker, for requests any
// broker can answer.
func (c *Client) Any(ctx context.Context) (*Conn, error) {
	var conn *Conn
	err := c.exchange(ctx, "connect", func(_ context.Context, cn *Conn) error {
		conn = cn
		return nil
	})
	return conn, err
}

// exchange runs do with a control connection to each candidate broker in
// turn until one succeeds. A connection that turns out broken is replaced
// once (the pool may have handed out one whose broker just went away).
func (c *Client) exchange(ctx context.Context, what string, do func(context.Context, *Conn) error) error {
	var errs []error
	for _, addr := range c.candidates() {
		if ctx.Err() != nil {
			break
		}
		err := c.attempt(ctx, addr, do)
		if err == nil {
			c.mu.Lock()
			c.preferred = addr
			c.mu.Unlock()
			return nil
		}
		if errors.Is(err, kafka.UnsupportedVersion) {
			return err // other brokers of the cluster run the same versions
		}
		errs = append(errs, err)
	}
	if err := ctx.Err(); err != nil && (len(errs) == 0 || !errors.Is(errs[len(errs)-1], err)) {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return fmt.Errorf("wire: %s: no broker address to try", what)
	}
	return fmt.Errorf("wire: %s: no broker answered: %w", what, errors.Join(errs...))
}

func (c *Client) attempt(ctx context.Context, addr string, do func(context.Context, *Conn) error) error {
	timeout := c.RequestTimeout
	if timeout <= 0 {
		timeout = DefaultRequestTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for retry := 0; ; retry++ {
		conn, err := c.net.Conn(ctx, addr, PurposeControl)
		if err != nil {
			return err
		}
		err = do(ctx, conn)
		if err != nil && retry == 0 && errors.Is(err, ErrConnClosed) && ctx.Err() == nil {
			continue
		}
		return err
	}
}

// candidates lists the addresses to try, without duplicates: the one that
// answered last, the bootstrap addresses, then the known brokers by ID.
func (c *Client) candidates() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, 1+len(c.bootstrap)+len(c.brokers))
	seen := make(map[string]bool, cap(out))
	add := func(a string) {
		if a != "" && !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	add(c.preferred)
	for _, a := range c.bootstrap {
		add(a)
	}
	ids := make([]int32, 0, len(c.brokers))
	for id := range c.brokers {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		add(c.brokers[id].Addr)
	}
	return out
}
