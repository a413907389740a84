// Package container runs a real Kafka broker in a Docker container for tests,
// with testcontainers-go's kafka module, and hands it out as an
// [mqtest.Cluster].
//
// It is a module of its own (github.com/mqkit/mq/mqtest/container) so that
// testcontainers-go, Docker's client and their dependencies reach only the
// test binaries that import it; mqtest's embedded and external modes never
// download or compile them.
//
// Use it directly:
//
//	c := container.New(t)                 // *mqtest.Cluster, removed at the end of the test
//	topic := c.NewTopic(t, 3)
//
// or import it for its side effect, which registers [mqtest.ModeContainer],
// and select the mode with MQ_TEST_BROKER=container (or
// mqtest.WithMode(mqtest.ModeContainer)) in code that calls [mqtest.New]:
//
//	import _ "github.com/mqkit/mq/mqtest/container"
//
// The image comes from [WithImage], else the KAFKA_TEST_IMAGE environment
// variable ([mqtest.EnvContainerImage]), else [DefaultImage]
// (confluentinc/confluent-local, pulled on first use). Any image with the
// confluent-local layout works; the repository's scripts/kafka-image/build.sh
// builds local/kafka:<version> from Apache Kafka's Maven Central jars
// without a registry. The broker is configured like mqtest's other modes:
// topics are never created automatically and the minimum group session
// timeout is 100 ms; [WithCustomizers] changes anything else.
//
// testcontainers-go reads its usual settings: DOCKER_HOST,
// TESTCONTAINERS_RYUK_DISABLED=true where its resource reaper image cannot
// be pulled (containers of a killed test process then stay behind), and
// TESTCONTAINERS_HOST_OVERRIDE when the mapped ports are not reachable at the
// address it guesses (tests running inside a container). Start-up takes
// seconds (about 10 to 25 with a local image on a small machine); share one
// Cluster per package (TestMain) where possible. Without a Docker daemon, or
// when the image is neither present nor pullable, [NewCluster] fails with an
// error wrapping [mqtest.ErrModeNotAvailable]; it never skips.
package container

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"

	"github.com/mqkit/mq/mqtest"
)

// DefaultImage is the image started when neither [WithImage] nor
// KAFKA_TEST_IMAGE names one: the kafka module's usual image, pulled on first
// use when not present locally.
const DefaultImage = "confluentinc/confluent-local:7.5.0"

// StopTimeout is how long Docker waits for the broker to exit when the
// container is removed. The module's PID 1 is sh, which ignores SIGTERM, so a
// normal stop would wait Docker's default 10 s for nothing; test data is
// disposable, so the container is killed at once.
const StopTimeout = time.Duration(0)

// reaperImage is testcontainers-go v0.44.0's resource reaper image (its
// exported ReaperDefaultImage is deprecated and the current name is internal);
// it is only named in a hint when the image is missing.
const reaperImage = "testcontainers/ryuk:0.14.0"

const (
	// startTimeout bounds start-up (including a first image pull) when the
	// caller's context has no deadline.
	startTimeout = 5 * time.Minute
	// minSessionTimeout lowers group.min.session.timeout.ms as mqtest's
	// embedded mode does, so consumer-group tests can use short sessions.
	minSessionTimeout = 100 * time.Millisecond
)

func init() {
	mqtest.RegisterProvider(mqtest.ModeContainer, func(ctx context.Context, opts ...mqtest.Option) (*mqtest.Cluster, error) {
		return NewCluster(ctx, WithClusterOptions(opts...))
	})
}

// Option configures [NewCluster] and [New].
type Option interface {
	apply(*config)
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	image       string
	customizers []testcontainers.ContainerCustomizer
	cluster     []mqtest.Option
}

// WithImage sets the Kafka image to start, overriding KAFKA_TEST_IMAGE and
// [DefaultImage]. The last WithImage wins.
func WithImage(image string) Option {
	return optionFunc(func(c *config) { c.image = image })
}

// WithCustomizers passes extra options to testcontainers-go's kafka module
// (tckafka.Run), for example testcontainers.WithEnv to change broker
// settings (KAFKA_FOO_BAR sets foo.bar). They are applied after the module's
// and this package's own (auto.create.topics.enable=false,
// group.min.session.timeout.ms=100), so they can override them. Repeated use
// is additive.
func WithCustomizers(opts ...testcontainers.ContainerCustomizer) Option {
	return optionFunc(func(c *config) { c.customizers = append(c.customizers, opts...) })
}

// WithClusterOptions passes options to the [mqtest.Cluster] built for the
// container (for example mqtest.WithDefaultPartitions). Mode and broker
// options are ignored. Repeated use is additive.
func WithClusterOptions(opts ...mqtest.Option) Option {
	return optionFunc(func(c *config) { c.cluster = append(c.cluster, opts...) })
}

// containerEnv is the broker configuration added on top of the kafka
// module's, so a container behaves like mqtest's other modes.
var containerEnv = map[string]string{
	"KAFKA_AUTO_CREATE_TOPICS_ENABLE":    "false",
	"KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS": fmt.Sprint(minSessionTimeout.Milliseconds()),
}

var (
	containersMu sync.Mutex
	containers   = map[*mqtest.Cluster]*tckafka.KafkaContainer{}
)

// Container returns the testcontainers-go container running c's broker (for
// Exec, Logs and the like), or nil when c was not started by this package.
// The container is removed by c.Close.
func Container(c *mqtest.Cluster) testcontainers.Container {
	containersMu.Lock()
	defer containersMu.Unlock()
	if kc, ok := containers[c]; ok {
		return kc
	}
	return nil
}

// New is the test form of [NewCluster]: it starts a broker, registers the
// cluster's Close with t.Cleanup, and stops the test with t.Fatalf if the
// broker cannot be started or reached. It never skips.
func New(t testing.TB, opts ...Option) *mqtest.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	c, err := NewCluster(ctx, opts...)
	if err != nil {
		t.Fatalf("container.New: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("container: closing cluster: %v", err)
		}
	})
	return c
}

// NewCluster starts a Kafka broker in a container and returns an
// [mqtest.Cluster] for it, in [mqtest.ModeContainer]. ctx bounds start-up
// (5 minutes when it has no deadline). The caller must call Close, which
// removes the container.
func NewCluster(ctx context.Context, opts ...Option) (c *mqtest.Cluster, err error) {
	var cfg config
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	image := cfg.image
	if image == "" {
		image = strings.TrimSpace(os.Getenv(mqtest.EnvContainerImage))
	}
	if image == "" {
		image = DefaultImage
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	// testcontainers-go panics in some places when it finds no Docker
	// daemon (that is how its SkipIfProviderIsNotHealthy works).
	defer func() {
		if r := recover(); r != nil {
			c = nil
			err = fmt.Errorf("%w: %q mode needs a Docker daemon: %v", mqtest.ErrModeNotAvailable, mqtest.ModeContainer, r)
		}
	}()

	local, err := checkDocker(ctx, image)
	if err != nil {
		return nil, err
	}
	ryuk := !testcontainers.ReadConfig().RyukDisabled

	custom := []testcontainers.ContainerCustomizer{testcontainers.WithEnv(containerEnv)}
	custom = append(custom, cfg.customizers...)
	start := time.Now()
	kc, err := tckafka.Run(ctx, image, custom...)
	if err != nil {
		if kc != nil {
			_ = testcontainers.TerminateContainer(kc, terminateOptions()...)
		}
		return nil, startError(image, local, ryuk, time.Since(start), err)
	}
	var cluster *mqtest.Cluster
	release := func() error {
		containersMu.Lock()
		delete(containers, cluster)
		containersMu.Unlock()
		return testcontainers.TerminateContainer(kc, terminateOptions()...)
	}
	brokers, err := kc.Brokers(ctx)
	if err == nil && len(brokers) == 0 {
		err = errors.New("no broker address")
	}
	if err != nil {
		_ = release()
		return nil, fmt.Errorf("mqtest/container: Kafka container from %s started, but: %w", image, err)
	}
	cluster, err = mqtest.Attach(ctx, mqtest.ModeContainer, brokers, release, cfg.cluster...)
	if err != nil {
		return nil, fmt.Errorf("mqtest/container: image %s (tests running inside a container may need "+
			"TESTCONTAINERS_HOST_OVERRIDE=localhost or the Docker host's address): %w", image, err)
	}
	containersMu.Lock()
	containers[cluster] = kc
	containersMu.Unlock()
	return cluster, nil
}

// terminateOptions are the options every container is removed with.
func terminateOptions() []testcontainers.TerminateOption {
	return []testcontainers.TerminateOption{testcontainers.StopTimeout(StopTimeout)}
}

// checkDocker makes sure a Docker daemon answers and reports whether image
// is present locally.
func checkDocker(ctx context.Context, image string) (local bool, err error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return false, notAvailable("needs a Docker daemon, but none answers "+
			"(start one, e.g. with scripts/docker/start.sh, or use "+mqtest.EnvMode+"=embedded)", err)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, image); err == nil {
		local = true
	}
	if !testcontainers.ReadConfig().RyukDisabled {
		if _, err := cli.ImageInspect(ctx, reaperImage); err != nil {
			// Not an error: with a registry at hand testcontainers pulls it.
			// Without one, the start fails (see startError).
			log.Printf("mqtest/container: the ryuk image %s (testcontainers' resource reaper) is not present locally and will be pulled; "+
				"where no registry is reachable set TESTCONTAINERS_RYUK_DISABLED=true", reaperImage)
		}
	}
	return local, nil
}

func notAvailable(what string, err error) error {
	return fmt.Errorf("%w: %q mode %s: %w", mqtest.ErrModeNotAvailable, mqtest.ModeContainer, what, err)
}

// startError explains why the kafka module could not start image.
func startError(image string, local, ryuk bool, took time.Duration, err error) error {
	msg := err.Error()
	switch {
	case !local && !strings.Contains(msg, "reaper"):
		return notAvailable(fmt.Sprintf("cannot start: Kafka image %s is not present locally and could not be pulled "+
			"(build a local one with scripts/kafka-image/build.sh and set %s=local/kafka:<version>)",
			image, mqtest.EnvContainerImage), err)
	case ryuk && strings.Contains(msg, "reaper"):
		return notAvailable(fmt.Sprintf("cannot start: testcontainers' resource reaper (ryuk, image %s) could not start; "+
			"where its image cannot be pulled set TESTCONTAINERS_RYUK_DISABLED=true "+
			"(and remove leaked containers with: docker rm -f $(docker ps -aq --filter label=org.testcontainers=true))",
			reaperImage), err)
	default:
		return fmt.Errorf("mqtest/container: starting a Kafka container from %s failed after %s "+
			"(the image must have the confluentinc/confluent-local layout testcontainers-go's kafka module expects): %w",
			image, took.Round(time.Millisecond), err)
	}
}
