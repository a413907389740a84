package mqtest

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/testcontainers/testcontainers-go"
	tckafka "github.com/testcontainers/testcontainers-go/modules/kafka"
)

// Container mode settings.
const (
	// DefaultContainerImage is the image [ModeContainer] starts when neither
	// [WithContainerImage] nor KAFKA_TEST_IMAGE names one: the kafka module's
	// usual image. It is pulled on first use when not present locally.
	DefaultContainerImage = "confluentinc/confluent-local:7.5.0"

	// containerStartTimeout bounds container start-up (including a first
	// image pull) when the caller's context has no deadline.
	containerStartTimeout = 5 * time.Minute

	// groupCoordinatorTimeout bounds the wait for a fresh broker's group
	// coordinator (see awaitGroupCoordinator).
	groupCoordinatorTimeout = 30 * time.Second

	// containerMinSessionTimeout lowers the broker's
	// group.min.session.timeout.ms (6 s by default) as in embedded mode, so
	// consumer-group tests can use short session timeouts.
	containerMinSessionTimeout = embeddedMinSessionTimeout
)

// containerEnv is the broker configuration mqtest adds on top of the kafka
// module's, so a container behaves like the other modes: topics are never
// created automatically and short group session timeouts are accepted.
// Options given with [WithContainerCustomizers] come later and win.
var containerEnv = map[string]string{
	"KAFKA_AUTO_CREATE_TOPICS_ENABLE":    "false",
	"KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS": fmt.Sprint(containerMinSessionTimeout.Milliseconds()),
}

// newContainer starts a Kafka broker in a container with testcontainers-go's
// kafka module and returns a Cluster for it.
func newContainer(ctx context.Context, cfg config) (c *Cluster, err error) {
	image := cfg.containerImage
	if image == "" {
		image = strings.TrimSpace(os.Getenv(EnvContainerImage))
	}
	if image == "" {
		image = DefaultContainerImage
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, containerStartTimeout)
		defer cancel()
	}
	// testcontainers-go panics in some places when it finds no Docker
	// daemon (that is how its SkipIfProviderIsNotHealthy works).
	defer func() {
		if r := recover(); r != nil {
			c = nil
			err = fmt.Errorf("%w: %q mode needs a Docker daemon: %v", ErrModeNotAvailable, ModeContainer, r)
		}
	}()

	local, err := checkDocker(ctx, image)
	if err != nil {
		return nil, err
	}
	ryuk := !testcontainers.ReadConfig().RyukDisabled

	opts := []testcontainers.ContainerCustomizer{testcontainers.WithEnv(containerEnv)}
	opts = append(opts, cfg.containerOpts...)
	start := time.Now()
	kc, err := tckafka.Run(ctx, image, opts...)
	if err != nil {
		if kc != nil {
			_ = testcontainers.TerminateContainer(kc, testcontainers.StopTimeout(0))
		}
		return nil, containerStartError(image, local, ryuk, time.Since(start), err)
	}
	terminate := func() error {
		// The module's PID 1 is sh, which ignores SIGTERM: a normal stop
		// would wait Docker's 10 s timeout. Test data is disposable.
		return testcontainers.TerminateContainer(kc, testcontainers.StopTimeout(0))
	}

	brokers, err := kc.Brokers(ctx)
	if err == nil && len(brokers) == 0 {
		err = errors.New("no broker address")
	}
	if err != nil {
		_ = terminate()
		return nil, fmt.Errorf("mqtest: Kafka container from %s started, but: %w", image, err)
	}

	c = newCluster(ModeContainer, brokers, nil, cfg)
	c.container = kc
	c.terminate = terminate
	if err := c.checkReachable(ctx, cfg.connectTimeout); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("mqtest: Kafka container from %s started, but %v is not usable from here "+
			"(tests running inside a container may need TESTCONTAINERS_HOST_OVERRIDE=localhost or the Docker host's address): %w",
			image, brokers, err)
	}
	if err := c.awaitGroupCoordinator(ctx, groupCoordinatorTimeout); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("mqtest: Kafka container from %s started, but its group coordinator is not ready: %w", image, err)
	}
	return c, nil
}

// checkDocker makes sure a Docker daemon answers and reports whether image
// is present locally.
func checkDocker(ctx context.Context, image string) (local bool, err error) {
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return false, fmt.Errorf("%w: %q mode needs a Docker daemon, but none answers "+
			"(start one, e.g. with scripts/docker/start.sh, or use %s=%s): %w",
			ErrModeNotAvailable, ModeContainer, EnvMode, ModeEmbedded, err)
	}
	defer cli.Close()
	if _, err := cli.ImageInspect(ctx, image); err == nil {
		local = true
	}
	if !testcontainers.ReadConfig().RyukDisabled {
		if _, err := cli.ImageInspect(ctx, testcontainers.ReaperDefaultImage); err != nil {
			// Not an error: with a registry at hand testcontainers pulls it.
			// Without one, the start fails (see containerStartError).
			log.Printf("mqtest: the ryuk image %s (testcontainers' resource reaper) is not present locally and will be pulled; "+
				"where no registry is reachable set TESTCONTAINERS_RYUK_DISABLED=true", testcontainers.ReaperDefaultImage)
		}
	}
	return local, nil
}

// containerStartError explains why the kafka module could not start image.
func containerStartError(image string, local, ryuk bool, took time.Duration, err error) error {
	msg := err.Error()
	switch {
	case !local && !strings.Contains(msg, "reaper"):
		return fmt.Errorf("%w: Kafka image %s is not present locally and could not be pulled "+
			"(build a local one with scripts/kafka-image/build.sh and set %s=local/kafka:<version>): %w",
			ErrModeNotAvailable, image, EnvContainerImage, err)
	case ryuk && strings.Contains(msg, "reaper"):
		return fmt.Errorf("%w: testcontainers' resource reaper (ryuk, image %s) could not start; "+
			"where its image cannot be pulled set TESTCONTAINERS_RYUK_DISABLED=true "+
			"(and remove leaked containers with: docker rm -f $(docker ps -aq --filter label=org.testcontainers=true)): %w",
			ErrModeNotAvailable, testcontainers.ReaperDefaultImage, err)
	default:
		return fmt.Errorf("mqtest: starting a Kafka container from %s failed after %s "+
			"(the image must have the confluentinc/confluent-local layout testcontainers-go's kafka module expects): %w",
			image, took.Round(time.Millisecond), err)
	}
}

// checkReachable checks that the broker answers metadata requests at the
// mapped address, bounded by timeout.
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
// or stall. The kafka module sets offsets.topic.num.partitions=1, so once
// one group works, all do.
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

// Container returns the testcontainers-go container running the broker in
// [ModeContainer] (for Exec, Logs and the like), or nil in the other modes.
// The container is terminated by [Cluster.Close].
func (c *Cluster) Container() testcontainers.Container {
	if c.container == nil {
		return nil
	}
	return c.container
}
