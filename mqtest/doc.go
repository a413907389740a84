// Package mqtest hands out Kafka brokers for tests, in the spirit of
// net/http/httptest.
//
// A [Cluster] is either an in-process fake broker (franz-go's kfake), an
// external broker you already run, or a real broker in a Docker container
// started with testcontainers-go. Tests
// get broker addresses from [Cluster.Addrs] and use the helpers on [Cluster]
// to create topics, write raw records, read records back and inspect offsets.
// The helpers speak to the broker with segmentio/kafka-go's [kafka.Client], the
// same library the mq package is built on.
//
// # Quick start
//
//	func TestSomething(t *testing.T) {
//		c := mqtest.New(t)        // closed automatically by t.Cleanup
//		topic := c.NewTopic(t, 3) // unique name, 3 partitions
//		// ... point the code under test at c.Addrs() and topic ...
//		offsets, err := c.EndOffsets(t.Context(), topic)
//	}
//
// # Choosing a broker
//
// [NewCluster] and [New] pick the broker in this order:
//
//  1. the [WithMode] option;
//  2. the MQ_TEST_BROKER environment variable ([EnvMode]): "embedded",
//     "external" or "container";
//  3. [ModeExternal] if broker addresses were given with [WithBrokers] or in
//     the KAFKA_BROKERS environment variable ([EnvBrokers], comma-separated
//     host:port list);
//  4. otherwise [ModeEmbedded].
//
// A mode that was asked for explicitly and cannot start is an error: mqtest
// never falls back to another mode and never skips a test. In particular
// [ModeExternal] without addresses, an unreachable external broker, and
// [ModeContainer] without its module imported, without Docker or without
// its image (see [ErrModeNotAvailable]) all fail.
//
// # The embedded broker
//
// [ModeEmbedded] runs kfake in the test process on 127.0.0.1 with a random
// port and one broker. Topics are never created automatically: create them
// with [Cluster.CreateTopic] or [Cluster.NewTopic]. The minimum group session
// timeout is lowered from kfake's 6 s to 100 ms so consumer-group tests can
// use short session timeouts. kfake has no replication, quotas or
// throttling, so acknowledgement and fail-over behaviour still needs a real
// broker; [Cluster.Kfake] exposes the fake for fault injection. kfake does not
// validate topics: it accepts any config key and value (an unknown key,
// retention.ms=abc) and any name ("bad name!"), where Kafka refuses them
// (mq.CreateTopics returns a *mq.TopicError matching
// kafka.InvalidConfiguration or kafka.InvalidTopic). With SASL enabled
// (kfake.EnableSASL, through [WithKfakeOptions] for instance), it closes the
// connection on a wrong password instead of answering
// SASL_AUTHENTICATION_FAILED: producers and consumers still return an
// error wrapping mq.ErrAuthentication, but mq's admin functions
// (CreateTopics, GroupOffsets and the others) and mq.Redrive fail with
// "unexpected EOF", which does not wrap it.
//
// # The container broker
//
// [ModeContainer] lives in the separate module
// github.com/mqkit/mq/mqtest/container, so that testcontainers-go and
// Docker's client reach only the test binaries that import it. Call its
// container.New(t), or import it for its side effect and select the mode
// with MQ_TEST_BROKER=container or [WithMode]:
//
//	import _ "github.com/mqkit/mq/mqtest/container"
//
// Without that import, [NewCluster] fails with an error wrapping
// [ErrModeNotAvailable]. The mode runs testcontainers-go's kafka module
// (KRaft, one combined broker and controller) with the image from
// container.WithImage, the KAFKA_TEST_IMAGE environment variable
// ([EnvContainerImage]) or container.DefaultImage
// (confluentinc/confluent-local, pulled on first use). Any image with the
// confluent-local layout works; the repository's
// scripts/kafka-image/build.sh builds local/kafka:<version> from Apache
// Kafka's Maven Central jars without a registry. It turns off topic
// auto-creation and lowers group.min.session.timeout.ms to 100 ms, as in
// embedded mode; container.WithCustomizers changes anything else.
// container.Container(c) returns the container (Exec, Logs).
//
// testcontainers-go reads its usual settings: DOCKER_HOST, and
// TESTCONTAINERS_RYUK_DISABLED=true where its resource reaper image
// (testcontainers/ryuk) cannot be pulled (containers of a killed test
// process then stay behind), and TESTCONTAINERS_HOST_OVERRIDE when the
// mapped ports are not reachable at the address it guesses (tests running
// inside a container). Start-up takes seconds (about 10 to 25 with a
// local image on a small machine) and is bounded by the context given to
// [NewCluster], or by 5 minutes when it has no deadline; share one Cluster
// per package (TestMain) where possible.
//
// # Topics and kafka-go metadata caches
//
// kafka-go caches cluster metadata per [kafka.Transport] (6 s by default),
// and a [kafka.Writer] whose transport has already cached metadata fails at
// once with [kafka.UnknownTopicOrPartition] when it writes to a topic created
// after that. [kafka.DefaultTransport] is shared by the whole process, so
// create a test's topics before the code under test first talks to the
// broker, or give that code its own transport. The helpers here cope on
// their own: they check with the broker and wait for their cache to catch up
// with topics created by other clients. Topics are never auto-created, and
// reading a topic that does not exist returns an error instead of hanging.
//
// # Cleanup
//
// [Cluster.Close] closes the helper client's connections and, in embedded
// mode, stops the fake broker; in container mode it kills and removes the
// container. It is idempotent. [New] registers it with t.Cleanup.
package mqtest
