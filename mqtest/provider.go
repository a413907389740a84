package mqtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

// Provider starts a broker for a [Mode] whose implementation lives outside
// this package, so that mqtest itself stays light: [ModeContainer] is
// provided by the separate module github.com/mqkit/mq/mqtest/container,
// which pulls in testcontainers-go and Docker's client only for the programs
// that import it. A Provider gets the options given to [NewCluster] or [New]
// and returns a Cluster, usually made with [Attach].
type Provider func(ctx context.Context, opts ...Option) (*Cluster, error)

var (
	providersMu sync.RWMutex
	providers   = map[Mode]Provider{}
)

// RegisterProvider makes [NewCluster] use p for mode m. Packages providing a
// mode call it from an init function; importing such a package for its side
// effect enables the mode:
//
//	import _ "github.com/mqkit/mq/mqtest/container" // MQ_TEST_BROKER=container
//
// Registering a mode again replaces the earlier provider. Only
// [ModeContainer] can be provided this way; other modes are built in.
func RegisterProvider(m Mode, p Provider) {
	providersMu.Lock()
	defer providersMu.Unlock()
	providers[m] = p
}

func newFromProvider(ctx context.Context, m Mode, opts []Option) (*Cluster, error) {
	providersMu.RLock()
	p := providers[m]
	providersMu.RUnlock()
	if p == nil {
		return nil, fmt.Errorf("%w: %q mode lives in the module github.com/mqkit/mq/mqtest/container; "+
			"import it (import _ \"github.com/mqkit/mq/mqtest/container\") in the test binary to enable it",
			ErrModeNotAvailable, m)
	}
	return p(ctx, opts...)
}

// Attach returns a Cluster for brokers that a [Provider] started, at addrs,
// reporting mode m. It waits (bounded by ctx and the [WithConnectTimeout]
// setting) until the brokers answer metadata requests and their group
// coordinator is ready, so that a test's first consumer-group join or
// offset fetch does not meet a coordinator still loading. [Cluster.Close]
// calls release after closing the helper's own connections. If Attach fails
// it calls release itself.
func Attach(ctx context.Context, m Mode, addrs []string, release func() error, opts ...Option) (*Cluster, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if len(addrs) == 0 {
		if release != nil {
			_ = release()
		}
		return nil, fmt.Errorf("mqtest: attaching %s brokers: %w", m, ErrNoBrokers)
	}
	c := newCluster(m, addrs, nil, cfg)
	c.release = release
	if err := c.checkReachable(ctx, cfg.connectTimeout); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("mqtest: %s brokers %v started, but are not usable from here: %w", m, addrs, err)
	}
	if err := c.awaitGroupCoordinator(ctx, groupCoordinatorTimeout); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("mqtest: %s brokers %v started, but the group coordinator is not ready: %w", m, addrs, err)
	}
	return c, nil
}

// checkReachable checks that the broker answers metadata requests, bounded
// by timeout.
func (c *Cluster) checkReachable(ctx context.Context, timeout time.Duration) error {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := probeBrokers(cctx, c.addrs); err != nil {
		return err
	}
	md, err := c.freshMetadata(cctx, nil)
	if err == nil && len(md.Brokers) == 0 {
		err = errors.New("metadata lists no brokers")
	}
	return err
}

// awaitGroupCoordinator waits until the broker answers group requests.
//
// A fresh broker creates its __consumer_offsets topic on the first
// FindCoordinator request and answers NOT_COORDINATOR or
// COORDINATOR_LOAD_IN_PROGRESS until that topic is loaded, so the first
// [Cluster.CommittedOffsets] (or consumer-group join) of a test would fail
// or stall.
func (c *Cluster) awaitGroupCoordinator(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last error
	for backoff := 20 * time.Millisecond; ; backoff = min(2*backoff, 500*time.Millisecond) {
		resp, err := c.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: "mqtest-warm-up"})
		if err == nil {
			err = resp.Error
		}
		if err == nil || errors.Is(err, kafka.GroupIdNotFound) {
			return nil
		}
		last = err
		var kerr kafka.Error
		if errors.As(err, &kerr) && !kerr.Temporary() && !errors.Is(err, kafka.NotCoordinatorForGroup) {
			return err
		}
		if err := sleep(ctx, backoff); err != nil {
			return fmt.Errorf("%w (last error: %v)", err, last)
		}
	}
}
