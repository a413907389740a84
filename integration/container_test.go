//go:build container

package integration

// Built with -tags container (CI's testcontainers tier): links
// github.com/mqkit/mq/mqtest/container, which registers mqtest's container
// mode, so MQ_TEST_BROKER=container runs this suite against a broker in a
// Docker container. Without the tag, the suite never compiles Docker's client.
import _ "github.com/mqkit/mq/mqtest/container"
