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

	// ModeContainer will start a real Kafka broker in a container with
	// testcontainers-go. It is a placeholder for now: [NewCluster] returns
	// an error wrapping [ErrModeNotAvailable] when it is selected.
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
)

var (
	// ErrModeNotAvailable is returned (wrapped) by [NewCluster] when the
	// selected [Mode] is not implemented yet; today that is [ModeContainer].
	ErrModeNotAvailable = errors.New("mqtest: broker mode not available yet")

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
