package mqtest

import (
	"errors"
	"fmt"
	"strings"
)

// Mode says where a [Cluster]'s broker comes from.
type Mode string

const (
	// ModeEmbedded runs franz-go's kfake fake broker inside the test
	// process. It needs no Docker and no network beyond 127.0.0.1.
	ModeEmbedded Mode = "embedded"

	// ModeExternal uses a broker that is already running, at the addresses
	// given with [WithBrokers] or in the KAFKA_BROKERS environment variable.
	ModeExternal Mode = "external"

	// ModeContainer starts a real Kafka broker in a Docker container with
	// testcontainers-go's kafka module, from the image named by
	// container.WithImage, the KAFKA_TEST_IMAGE environment variable
	// ([EnvContainerImage]) or container.DefaultImage. It is provided by the
	// module github.com/mqkit/mq/mqtest/container (see [RegisterProvider]).
	// [Cluster.Close] removes the container. Without that module imported,
	// without a Docker daemon, or when the image is neither present locally
	// nor pullable, [NewCluster] fails with an error wrapping
	// [ErrModeNotAvailable].
	ModeContainer Mode = "container"
)

// String returns the mode's name, as used in the MQ_TEST_BROKER environment
// variable.
func (m Mode) String() string { return string(m) }

// Environment variables read by [NewCluster] and [New].
const (
	// EnvMode names the environment variable that selects the [Mode] when
	// [WithMode] is not given: "embedded", "external" or "container".
	EnvMode = "MQ_TEST_BROKER"

	// EnvBrokers names the environment variable holding a comma-separated
	// list of host:port broker addresses for [ModeExternal]. When it is set
	// and no mode was chosen, [ModeExternal] is used.
	EnvBrokers = "KAFKA_BROKERS"

	// EnvContainerImage names the environment variable holding the Kafka
	// image [ModeContainer] starts when container.WithImage is not given.
	// The image must have the layout of confluentinc/confluent-local, which
	// testcontainers-go's kafka module expects; the repository's
	// scripts/kafka-image/build.sh builds such an image (local/kafka:<version>)
	// from Apache Kafka's Maven Central jars without any registry.
	EnvContainerImage = "KAFKA_TEST_IMAGE"
)

var (
	// ErrModeNotAvailable is returned (wrapped) by [NewCluster] when the
	// selected [Mode] cannot be used in this environment: for
	// [ModeContainer], when its module (github.com/mqkit/mq/mqtest/container)
	// is not imported, when no Docker daemon answers, when the image is
	// neither present locally nor pullable, or when testcontainers' resource
	// reaper (ryuk) cannot start.
	ErrModeNotAvailable = errors.New("mqtest: broker mode not available")

	// ErrNoBrokers is returned (wrapped) by [NewCluster] when [ModeExternal]
	// is selected but no broker addresses were given.
	ErrNoBrokers = errors.New("mqtest: no broker addresses for external mode")

	// ErrClosed is returned by the [Cluster] helpers after [Cluster.Close].
	ErrClosed = errors.New("mqtest: cluster closed")
)

// parseMode turns an environment value into a Mode.
func parseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case ModeEmbedded, ModeExternal, ModeContainer:
		return m, nil
	default:
		return "", fmt.Errorf("mqtest: unknown broker mode %q: want %q, %q or %q",
			s, ModeEmbedded, ModeExternal, ModeContainer)
	}
}

// splitBrokers parses a comma-separated list of addresses, dropping blanks.
func splitBrokers(s string) []string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}
