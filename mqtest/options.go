package mqtest

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Option configures [NewCluster] and [New].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	mode              Mode // "" means choose automatically
	brokers           []string
	defaultPartitions int
	kfakeOpts         []kfake.Opt
	connectTimeout    time.Duration
}

func defaultConfig() config {
	return config{
		defaultPartitions: 1,
		connectTimeout:    10 * time.Second,
	}
}

// WithMode selects where the broker comes from, overriding the MQ_TEST_BROKER
// and KAFKA_BROKERS environment variables. A mode chosen this way that cannot
// start makes [NewCluster] fail; there is no fallback. The last WithMode wins.
func WithMode(m Mode) Option {
	return optionFunc(func(c *config) { c.mode = m })
}

// WithBrokers sets the broker addresses (host:port) for [ModeExternal],
// overriding the KAFKA_BROKERS environment variable. When neither [WithMode]
// nor MQ_TEST_BROKER chooses a mode, giving addresses selects
// [ModeExternal]. The addresses are ignored in the other modes. The last
// WithBrokers wins.
func WithBrokers(addrs ...string) Option {
	return optionFunc(func(c *config) { c.brokers = append([]string(nil), addrs...) })
}

// WithDefaultPartitions sets the partition count [Cluster.CreateTopic] and
// [Cluster.NewTopic] use when asked for zero or fewer partitions, overriding
// the default of 1. Values below 1 are ignored.
func WithDefaultPartitions(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.defaultPartitions = n
		}
	})
}

// WithKfakeOptions passes extra options to kfake.NewCluster in
// [ModeEmbedded]; other modes ignore them. They are applied after mqtest's
// own (kfake.NumBrokers(1) and kfake.GroupMinSessionTimeout(100ms)), so they
// can override them. Repeated use is additive.
func WithKfakeOptions(opts ...kfake.Opt) Option {
	return optionFunc(func(c *config) { c.kfakeOpts = append(c.kfakeOpts, opts...) })
}

// WithConnectTimeout bounds the connectivity check [NewCluster] runs against
// external brokers (and against a freshly started container), overriding
// the default of 10 seconds. Values of zero or less are ignored.
func WithConnectTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) {
		if d > 0 {
			c.connectTimeout = d
		}
	})
}

// Environment variables read by [Cluster.CreateTopic] (and so
// [Cluster.NewTopic]) in [ModeExternal], for running a suite against a
// multi-broker cluster with replicated topics, for example the three-node
// cluster of the repository's scripts/kafka/cluster.sh. Other modes always
// create topics with replication factor 1 (their broker is a single one).
const (
	// EnvReplicationFactor names the environment variable holding the
	// replication factor of topics created on external brokers (default 1).
	EnvReplicationFactor = "MQ_TEST_REPLICATION_FACTOR"

	// EnvMinInsyncReplicas names the environment variable holding the
	// min.insync.replicas topic setting of topics created on external
	// brokers (default: unset, the broker's default applies).
	EnvMinInsyncReplicas = "MQ_TEST_MIN_ISR"
)

// topicReplication returns the replication factor and min.insync.replicas
// (0: unset) that [EnvReplicationFactor] and [EnvMinInsyncReplicas] ask for.
func topicReplication() (rf, minISR int, err error) {
	rf, minISR = 1, 0
	for _, v := range []struct {
		name string
		dst  *int
	}{{EnvReplicationFactor, &rf}, {EnvMinInsyncReplicas, &minISR}} {
		s := strings.TrimSpace(os.Getenv(v.name))
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return 0, 0, fmt.Errorf("mqtest: %s=%q: want a positive number", v.name, s)
		}
		*v.dst = n
	}
	if minISR > rf {
		return 0, 0, fmt.Errorf("mqtest: %s=%d is above %s=%d: no write could succeed", EnvMinInsyncReplicas, minISR, EnvReplicationFactor, rf)
	}
	return rf, minISR, nil
}
