package mqtest

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// Timeouts used by the helpers in addition to the caller's context.
const (
	// requestTimeout caps every request the helper client sends.
	requestTimeout = 10 * time.Second
	// topicReadyTimeout caps how long CreateTopic waits for a new topic to
	// show up in metadata with a leader for every partition.
	topicReadyTimeout = 30 * time.Second
	// metadataTTL is the helper transport's metadata cache lifetime. It is
	// short so topics created by other clients become visible quickly.
	metadataTTL = 500 * time.Millisecond
	// embeddedMinSessionTimeout replaces kfake's 6 s minimum group session
	// timeout so consumer-group tests can use short session timeouts.
	embeddedMinSessionTimeout = 100 * time.Millisecond
	// newTimeout bounds topic creation in NewTopic.
	newTimeout = time.Minute
	// startTimeout bounds broker start-up in New; starting a container may
	// include pulling its image.
	startTimeout = 5 * time.Minute
	// groupCoordinatorTimeout bounds the wait for a fresh broker's group
	// coordinator (see awaitGroupCoordinator).
	groupCoordinatorTimeout = 30 * time.Second
)

// Cluster is a Kafka broker for tests together with an admin client for it.
//
// A Cluster is safe for concurrent use. Call [Cluster.Close] when done (or
// let [New] do it); after Close the helpers return [ErrClosed].
type Cluster struct {
	mode              Mode
	addrs             []string
	kf                *kfake.Cluster
	release           func() error // Attach: stops what the provider started
	transport         *kafka.Transport
	client            *kafka.Client
	defaultPartitions int

	closed    atomic.Bool
	closeOnce sync.Once
	closeErr  error
}

// NewCluster starts or connects to a broker and returns a [Cluster] for it.
//
// The [Mode] comes from [WithMode], else the MQ_TEST_BROKER environment
// variable, else [ModeExternal] when [WithBrokers] or KAFKA_BROKERS gives
// addresses, else [ModeEmbedded]. An explicitly chosen mode that cannot
// start is an error; NewCluster never falls back to another mode.
//
// ctx bounds start-up only; it is not kept. The caller must call
// [Cluster.Close].
func NewCluster(ctx context.Context, opts ...Option) (*Cluster, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}

	mode := cfg.mode
	if mode == "" {
		if v, ok := os.LookupEnv(EnvMode); ok && strings.TrimSpace(v) != "" {
			m, err := parseMode(v)
			if err != nil {
				return nil, fmt.Errorf("%w (from %s)", err, EnvMode)
			}
			mode = m
		}
	}
	brokers := cfg.brokers
	if len(brokers) == 0 {
		brokers = splitBrokers(os.Getenv(EnvBrokers))
	}
	if mode == "" {
		mode = ModeEmbedded
		if len(brokers) > 0 {
			mode = ModeExternal
		}
	}

	switch mode {
	case ModeEmbedded:
		return newEmbedded(cfg)
	case ModeExternal:
		return newExternal(ctx, cfg, brokers)
	case ModeContainer:
		return newFromProvider(ctx, mode, opts)
	default:
		_, err := parseMode(string(mode))
		return nil, err
	}
}

func newEmbedded(cfg config) (*Cluster, error) {
	kopts := append([]kfake.Opt{
		kfake.NumBrokers(1),
		kfake.GroupMinSessionTimeout(embeddedMinSessionTimeout),
	}, cfg.kfakeOpts...)
	kf, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("mqtest: starting embedded kfake broker: %w", err)
	}
	return newCluster(ModeEmbedded, kf.ListenAddrs(), kf, cfg), nil
}

func newExternal(ctx context.Context, cfg config, brokers []string) (*Cluster, error) {
	if len(brokers) == 0 {
		return nil, fmt.Errorf("%w: set %s to a comma-separated host:port list or use WithBrokers", ErrNoBrokers, EnvBrokers)
	}
	c := newCluster(ModeExternal, brokers, nil, cfg)
	if err := c.checkReachable(ctx, cfg.connectTimeout); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("mqtest: cannot use external Kafka brokers %v (checked for up to %s): %w", brokers, cfg.connectTimeout, err)
	}
	return c, nil
}

func newCluster(mode Mode, addrs []string, kf *kfake.Cluster, cfg config) *Cluster {
	t := newTransport(nil)
	return &Cluster{
		mode:      mode,
		addrs:     append([]string(nil), addrs...),
		kf:        kf,
		transport: t,
		client: &kafka.Client{
			Addr:      kafka.TCP(addrs...),
			Timeout:   requestTimeout,
			Transport: t,
		},
		defaultPartitions: cfg.defaultPartitions,
	}
}

// newTransport returns the transport settings every helper client uses.
// metadataTopics restricts the metadata the transport caches (nil: all).
func newTransport(metadataTopics []string) *kafka.Transport {
	return &kafka.Transport{
		DialTimeout:    5 * time.Second,
		MetadataTTL:    metadataTTL,
		MetadataTopics: metadataTopics,
		ClientID:       "mqtest",
	}
}

// New is the test form of [NewCluster]: it starts a [Cluster] from opts,
// registers [Cluster.Close] with t.Cleanup, and stops the test with
// t.Fatalf if the broker cannot be started or reached. It never skips.
func New(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := NewCluster(ctx, opts...)
	if err != nil {
		t.Fatalf("mqtest.New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("mqtest: closing cluster: %v", err)
		}
	})
	return c
}

// Addrs returns the broker addresses (host:port) to give to code under
// test. The slice is a copy.
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// Mode reports where the broker came from.
func (c *Cluster) Mode() Mode { return c.mode }

// Client returns the kafka-go client the helpers use. It is connected to
// [Cluster.Addrs] and stops working after [Cluster.Close]; do not change its
// fields.
func (c *Cluster) Client() *kafka.Client { return c.client }

// Kfake returns the embedded fake broker, for fault injection with its
// Control, ControlKey and similar methods, or nil when the mode is not
// [ModeEmbedded].
func (c *Cluster) Kfake() *kfake.Cluster { return c.kf }

// Close closes the helper client's connections and, in [ModeEmbedded],
// shuts the fake broker down; for a cluster made by [Attach] (such as
// [ModeContainer]) it calls the release function given there. External brokers are left running. Close is idempotent: later
// calls return the first call's result.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.transport.CloseIdleConnections()
		if c.kf != nil {
			c.kf.Close()
		}
		if c.release != nil {
			if err := c.release(); err != nil {
				c.closeErr = fmt.Errorf("mqtest: stopping the %s broker: %w", c.mode, err)
			}
		}
	})
	return c.closeErr
}

// NewTopic creates a topic with a unique name derived from t.Name() and the
// given number of partitions (the default partition count if zero or fewer)
// and returns its name. It stops the test with t.Fatalf on failure. On
// external brokers it registers a t.Cleanup that deletes the topic; embedded
// and container topics disappear with the broker.
func (c *Cluster) NewTopic(t testing.TB, partitions int) string {
	t.Helper()
	topic := UniqueName(t.Name())
	ctx, cancel := context.WithTimeout(context.Background(), newTimeout)
	defer cancel()
	if err := c.CreateTopic(ctx, topic, partitions); err != nil {
		t.Fatalf("mqtest: NewTopic: %v", err)
	}
	if c.mode == ModeExternal {
		t.Cleanup(func() {
			if c.closed.Load() {
				return
			}
			ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
			defer cancel()
			if err := c.DeleteTopic(ctx, topic); err != nil {
				t.Logf("mqtest: deleting topic %q: %v", topic, err)
			}
		})
	}
	return topic
}
