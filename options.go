package mq

import (
	"context"
	"crypto/tls"
	"fmt"
	"math"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/mqkit/mq/internal/wire"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"go.uber.org/zap"
)

// ProducerOption configures a [Producer]. Options are applied in order; for
// options that set a value, the last one wins.
type ProducerOption interface {
	applyProducer(*producerConfig)
}

// ConsumerOption configures a [KafkaConsumer]. Options are applied in order;
// for options that set a value, the last one wins.
type ConsumerOption interface {
	applyConsumer(*consumerConfig)
}

// Option configures producers, consumers, [Redrive] and the admin functions
// alike.
type Option interface {
	ProducerOption
	ConsumerOption
	RedriveOption
	AdminOption
}

type producerOptionFunc func(*producerConfig)

func (f producerOptionFunc) applyProducer(c *producerConfig) { f(c) }

type consumerOptionFunc func(*consumerConfig)

func (f consumerOptionFunc) applyConsumer(c *consumerConfig) { f(c) }

type commonOption func(*commonConfig)

func (f commonOption) applyProducer(c *producerConfig) { f(&c.commonConfig) }
func (f commonOption) applyConsumer(c *consumerConfig) { f(&c.commonConfig) }
func (f commonOption) applyRedrive(c *redriveConfig)   { f(&c.commonConfig) }
func (f commonOption) applyAdmin(c *adminConfig)       { f(&c.commonConfig) }

// commonConfig holds settings shared by producers and consumers.
type commonConfig struct {
	logger      *zap.Logger
	clientID    string
	codec       any // Codec[T], checked against T by the constructor
	dialTimeout time.Duration
	observer    Observer
	tls         *tls.Config
	sasl        sasl.Mechanism
}

// WithLogger sets the zap logger. A nil logger, like the default, logs nothing.
func WithLogger(l *zap.Logger) Option {
	return commonOption(func(c *commonConfig) { c.logger = l })
}

// WithClientID sets the client ID sent to the brokers. This overrides the
// default of "mq".
func WithClientID(id string) Option {
	return commonOption(func(c *commonConfig) { c.clientID = id })
}

// WithCodec sets the codec used to encode (producer) or decode (consumer)
// values. This overrides the default [JSONCodec]. Its type parameter must
// match the producer's or consumer's, as in
// NewProducer[Order](brokers, topic, WithCodec[Order](codec)).
//
// The match is checked when the producer or consumer is built, which returns
// an error wrapping [ErrInvalidOption] for a codec of another type; it is not
// a compile-time check. Options are deliberately not generic: a generic
// option type would make every option (WithLogger, WithTLS, …) need an
// explicit type argument, since Go cannot infer it from an option list.
func WithCodec[T any](codec Codec[T]) Option {
	return commonOption(func(c *commonConfig) { c.codec = codec })
}

// WithDialTimeout bounds how long opening a connection to a broker may take.
// This overrides the default of 10s.
func WithDialTimeout(d time.Duration) Option {
	return commonOption(func(c *commonConfig) { c.dialTimeout = d })
}

// WithObserver sets the observer told about sends, processing, commits and
// rebalances. Use [Observers] to combine several. The default is none.
func WithObserver(o Observer) Option {
	return commonOption(func(c *commonConfig) { c.observer = o })
}

// WithTLS makes every connection the producer or consumer opens (produce,
// fetch, group coordination, retry and dead-letter writes) use TLS with cfg.
// Build cfg yourself or with [TLSConfig]. A nil cfg, like the default, means
// plaintext. It is ignored by a producer given [WithTransport] and a consumer
// given [WithDialer]: configure those directly.
func WithTLS(cfg *tls.Config) Option {
	return commonOption(func(c *commonConfig) { c.tls = cfg })
}

// WithSASL makes every connection authenticate with the SASL mechanism m
// (see [SASLPlain] and [SASLScram]). Credentials are never logged and never
// appear in errors returned by mq. The default is no authentication.
func WithSASL(m sasl.Mechanism) Option {
	return commonOption(func(c *commonConfig) { c.sasl = m })
}

func (c *commonConfig) validate() error {
	if c.dialTimeout <= 0 {
		return invalid("dial timeout %v must be > 0", c.dialTimeout)
	}
	if c.clientID == "" {
		return invalid("client ID must not be empty")
	}
	return nil
}

func resolveCodec[T any](c any) (Codec[T], error) {
	if c == nil {
		return JSONCodec[T]{}, nil
	}
	codec, ok := c.(Codec[T])
	if !ok {
		var zero T
		return nil, invalid("codec %T does not encode values of type %T", c, zero)
	}
	return codec, nil
}

func logger(l *zap.Logger) *zap.Logger {
	if l == nil {
		return zap.NewNop()
	}
	return l.Named("mq")
}

// ----- producer options -----

// Compression selects the codec used to compress record batches.
type Compression int

// Compression codecs. The numeric values are Kafka's attribute codes.
const (
	CompressionNone   Compression = 0
	CompressionGzip   Compression = 1
	CompressionSnappy Compression = 2
	CompressionLz4    Compression = 3
	CompressionZstd   Compression = 4
)

// String returns the codec's name as Kafka spells it.
func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	case CompressionSnappy:
		return "snappy"
	case CompressionLz4:
		return "lz4"
	case CompressionZstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", int(c))
}

// Acks is the number of acknowledgements the partition leader must gather
// before a produce request succeeds.
type Acks int

// Acknowledgement levels.
const (
	// AcksNone does not wait for the broker: messages may be lost silently
	// (nothing is retried once written to the connection), offsets are
	// unknown (-1), and idempotence is off. Use only where loss is
	// acceptable.
	AcksNone Acks = 0
	// AcksLeader waits for the leader's local write; idempotence is off, so
	// a retry after a lost response can write a message twice.
	AcksLeader Acks = 1
	// AcksAll waits for every in-sync replica. It is the default, and
	// enables idempotence unless [WithIdempotence](false) says otherwise.
	AcksAll Acks = -1
)

type producerConfig struct {
	commonConfig
	batchSize        int
	batchBytes       int
	batchTimeout     time.Duration
	compression      Compression
	async            bool
	acks             Acks
	balancer         kafka.Balancer
	maxBuffered      int
	deliveryTimeout  time.Duration
	writeTimeout     time.Duration
	retryBackoff     time.Duration
	closeTimeout     time.Duration
	onDelivery       any // func(Message[T], Result, error)
	transport        *kafka.Transport
	idempotence      *bool // nil: on with AcksAll
	maxRequestSize   int
	manualPartitions bool
}

func defaultProducerConfig() producerConfig {
	return producerConfig{
		commonConfig: commonConfig{
			clientID:    "mq",
			dialTimeout: 10 * time.Second,
		},
		batchSize:       1000,
		batchBytes:      1 << 20,
		batchTimeout:    0,
		compression:     CompressionNone,
		acks:            AcksAll,
		maxBuffered:     10000,
		deliveryTimeout: 30 * time.Second,
		writeTimeout:    10 * time.Second,
		retryBackoff:    100 * time.Millisecond,
		closeTimeout:    30 * time.Second,
		maxRequestSize:  1 << 20,
	}
}

// idempotent reports whether the producer is idempotent: as asked with
// WithIdempotence, else whenever acks are AcksAll (as in the Java client).
func (c *producerConfig) idempotent() bool {
	if c.idempotence != nil {
		return *c.idempotence
	}
	return c.acks == AcksAll
}

// dialer returns the connection settings of the producer: its own, or those
// of the transport given with WithTransport.
func (c *producerConfig) dialer() *wire.Dialer {
	d := &wire.Dialer{ClientID: c.clientID, DialTimeout: c.dialTimeout, TLS: c.tls, SASL: c.sasl}
	if t := c.transport; t != nil {
		d.TLS, d.SASL, d.Dial = t.TLS, t.SASL, t.Dial
		if t.DialTimeout > 0 {
			d.DialTimeout = t.DialTimeout
		}
		if t.ClientID != "" {
			d.ClientID = t.ClientID
		}
	}
	return d
}

func (c *producerConfig) validate() error {
	if err := c.commonConfig.validate(); err != nil {
		return err
	}
	switch {
	case c.batchSize < 1:
		return invalid("batch size %d must be >= 1", c.batchSize)
	case c.batchBytes < 1:
		return invalid("batch bytes %d must be >= 1", c.batchBytes)
	case c.batchTimeout < 0:
		return invalid("batch timeout %v must be >= 0", c.batchTimeout)
	case c.compression < CompressionNone || c.compression > CompressionZstd:
		return invalid("unknown compression %d", int(c.compression))
	case c.acks != AcksNone && c.acks != AcksLeader && c.acks != AcksAll:
		return invalid("required acks %d must be AcksNone, AcksLeader or AcksAll", int(c.acks))
	case c.maxBuffered < 1:
		return invalid("max buffered records %d must be >= 1", c.maxBuffered)
	case c.deliveryTimeout <= 0:
		return invalid("delivery timeout %v must be > 0", c.deliveryTimeout)
	case c.writeTimeout <= 0:
		return invalid("write timeout %v must be > 0", c.writeTimeout)
	case c.retryBackoff < 0:
		return invalid("retry backoff %v must be >= 0", c.retryBackoff)
	case c.closeTimeout <= 0:
		return invalid("close timeout %v must be > 0", c.closeTimeout)
	case c.maxRequestSize < 1:
		return invalid("max request size %d must be >= 1", c.maxRequestSize)
	case c.idempotence != nil && *c.idempotence && c.acks != AcksAll:
		return invalid("idempotence needs WithRequiredAcks(AcksAll), not %d", int(c.acks))
	case c.writeTimeout/time.Millisecond >= math.MaxInt32:
		return invalid("write timeout %v is too large (max %v)", c.writeTimeout, time.Duration(math.MaxInt32-1)*time.Millisecond)
	}
	return nil
}

// WithBatchSize caps how many records one partition's batch holds (a
// produce request carries one batch per partition). This overrides the
// default of 1000.
func WithBatchSize(n int) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.batchSize = n })
}

// WithBatchBytes caps the uncompressed size of one partition's batch. A batch
// is also never larger than [WithMaxRequestSize], so a single message larger
// than either is rejected at once by Send with an error wrapping
// [ErrMessageTooLarge]. This overrides the default of 1 MiB.
func WithBatchBytes(n int) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.batchBytes = n })
}

// WithMaxRequestSize caps the size of one produce request to a broker, the
// batches of all the partitions it leads together, like the Java client's
// max.request.size: many busy partitions on one broker are sent in several
// requests rather than one beyond the broker's socket.request.max.bytes.
// Requests are measured encoded (compressed), which is known only once they
// are built: the producer estimates it from the compression ratio of recent
// batches, erring on the large side. A batch's uncompressed size never
// exceeds it (see [WithBatchBytes]). This overrides the default of 1 MiB.
func WithMaxRequestSize(n int) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.maxRequestSize = n })
}

// WithBatchTimeout sets how long asynchronous messages may wait for their
// batch to fill before it is sent (a linger). Synchronous sends never wait for
// it: their batch leaves as soon as the partition can send, and messages sent
// meanwhile are batched together. The default of 0 sends whenever the
// partition can.
func WithBatchTimeout(d time.Duration) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.batchTimeout = d })
}

// WithCompression sets the batch compression codec. This overrides the
// default of [CompressionNone]. Batches are compressed with kafka-go's codecs,
// except snappy, which uses s2's fast encoder (kafka-go's default is its
// slower "better" level) and writes each batch as one raw snappy block, as
// franz-go and librdkafka do; the Java client, kcat, kafka-go and franz-go
// read it.
func WithCompression(codec Compression) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.compression = codec })
}

// WithAsync makes [Producer.Send] and [Producer.SendMessages] return as soon
// as the messages are buffered. Each outcome is then reported exactly once to
// the handler set with [WithDeliveryHandler]; without one, failures are logged
// at error level and counted in the error returned by [Producer.Flush] and
// [Producer.Close]. The default is synchronous.
func WithAsync(enabled bool) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.async = enabled })
}

// WithDeliveryHandler sets the function told about the outcome of every
// message sent in asynchronous mode ([WithAsync]). It receives the message
// (with Topic, Partition and Offset filled in on success) and a nil error, or
// the error that made delivery fail. It runs on a goroutine of the producer
// (the sender of the partition's broker): keep it fast, and never call a
// blocking send from it.
func WithDeliveryHandler[T any](fn func(msg Message[T], err error)) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.onDelivery = fn })
}

// WithRequiredAcks sets the acknowledgements a produce request waits for.
// This overrides the default of [AcksAll]. Acks other than AcksAll turn
// idempotence off (see [WithIdempotence]).
func WithRequiredAcks(acks Acks) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.acks = acks })
}

// WithIdempotence turns the idempotent producer on or off. It is on by
// default with [AcksAll] and off with other acks, as in the Java client;
// turning it on with other acks is an invalid option.
//
// An idempotent producer asks the cluster for a producer ID at its first
// send (InitProducerId) and numbers every partition's batches, so the broker
// drops a retried batch it already wrote and rejects one that would reorder
// the partition. Up to five requests are then in flight per broker with the
// order of each partition kept. Its price is that ID request at the first
// send and the IdempotentWrite permission on the cluster (or Write on the
// topic) under ACLs: a cluster that refuses the ID fails the sends with an
// error saying so. Turn it off for such clusters: each partition then has
// one request in flight at a time, and a retry after a lost response can
// write a message twice.
func WithIdempotence(enabled bool) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.idempotence = &enabled })
}

// WithManualPartitioning makes every message go to the partition its
// [Message.Partition] names (0 included: the field is always used), instead
// of the balancer's choice. A partition the topic does not have fails the
// message once fresh metadata confirms it (with an error wrapping
// kafka.UnknownTopicOrPartition); a negative one is rejected by Send. The
// default is off: Message.Partition is ignored when producing.
func WithManualPartitioning(enabled bool) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.manualPartitions = enabled })
}

// WithBalancer sets how messages are assigned to partitions. The default
// hashes keys with murmur2 exactly like the Java client's default
// partitioner (so a key lands on the same partition whichever client wrote
// it) and sends nil keys to one partition until its batch leaves or a
// batch's worth ([WithBatchSize], [WithBatchBytes]) went to it, then to the
// next one that has a leader (sticky partitioning, as the Java client since
// 3.3, KIP-794, which forms full batches). kafka-go's balancers
// (kafka.CRC32Balancer for librdkafka compatibility, &kafka.Hash{} for
// Sarama's) can be passed here; they receive nil keys too. A nil balancer
// restores the default. It is ignored with [WithManualPartitioning].
func WithBalancer(b kafka.Balancer) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.balancer = b })
}

// WithMaxBufferedRecords caps the number of messages buffered or in flight.
// When the buffer is full, sends block until space frees up or their context
// ends: backpressure instead of unbounded memory. Nothing else makes a send
// block. This overrides the default of 10000.
func WithMaxBufferedRecords(n int) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.maxBuffered = n })
}

// WithDeliveryTimeout bounds the time from a message being buffered to its
// final outcome, whatever holds it up: retries, a partition without a
// leader, metadata that cannot be fetched, a broker that cannot be reached or
// does not answer. A message still in flight at the deadline fails with an
// error saying it may have been written. Some failures come sooner: a topic
// that metadata keeps saying does not exist (after about half a second of
// confirmations), authentication errors, and other errors no retry can fix.
// This overrides the default of 30s.
func WithDeliveryTimeout(d time.Duration) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.deliveryTimeout = d })
}

// WithWriteTimeout is the request timeout: how long the broker may wait for
// the acknowledgements of one produce request (sent as the request's
// timeout), and the deadline of each metadata and producer ID request to one
// broker. A produce response overdue by more than 10s past it closes the
// connection and the request is retried, within the delivery timeout. Dialing
// is bounded by [WithDialTimeout]. This overrides the default of 10s.
func WithWriteTimeout(d time.Duration) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.writeTimeout = d })
}

// WithRetryBackoff sets the first wait before a retriable produce error is
// retried; later waits double up to 1s. [Producer.Close] keeps these waits.
// This overrides the default of 100ms.
func WithRetryBackoff(d time.Duration) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.retryBackoff = d })
}

// WithCloseTimeout bounds how long [Producer.Close] waits for buffered
// messages to be delivered. This overrides the default of 30s.
func WithCloseTimeout(d time.Duration) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.closeTimeout = d })
}

// WithTransport makes the producer dial with the settings of a caller-owned
// kafka-go transport: its Dial function, DialTimeout, TLS, SASL and ClientID
// (when set). The producer opens its own connections with them (one per
// broker for produce requests, one for metadata); the transport's own
// connections, metadata cache and MetadataTTL are not used, and the producer
// does not close it.
func WithTransport(t *kafka.Transport) ProducerOption {
	return producerOptionFunc(func(c *producerConfig) { c.transport = t })
}

// ----- consumer options -----

// StartOffset says where a consumer group starts reading a partition that has
// no committed offset.
type StartOffset int64

// Start offsets.
const (
	// StartEarliest reads from the oldest retained record. It is the default.
	StartEarliest StartOffset = StartOffset(kafka.FirstOffset)
	// StartLatest reads only records written after the group joined.
	StartLatest StartOffset = StartOffset(kafka.LastOffset)
)

// RetryPolicy says how a failing handler is retried: it is called at most
// MaxAttempts times for one message, waiting an exponentially growing,
// jittered delay between attempts. The partition is blocked meanwhile; other
// partitions keep flowing.
type RetryPolicy struct {
	// MaxAttempts is the total number of calls, the first included (>= 1).
	MaxAttempts int
	// InitialBackoff is the wait before the second attempt.
	InitialBackoff time.Duration
	// MaxBackoff caps the wait.
	MaxBackoff time.Duration
	// Multiplier grows the wait after each attempt (>= 1).
	Multiplier float64
	// Jitter randomises each wait by ±Jitter of its value (0 to 1).
	Jitter float64
}

// DefaultRetryPolicy is the policy consumers use unless told otherwise: 5
// attempts, waits from 100ms doubling up to 5s, ±20% jitter.
var DefaultRetryPolicy = RetryPolicy{
	MaxAttempts:    5,
	InitialBackoff: 100 * time.Millisecond,
	MaxBackoff:     5 * time.Second,
	Multiplier:     2,
	Jitter:         0.2,
}

func (p RetryPolicy) validate() error {
	switch {
	case p.MaxAttempts < 1:
		return invalid("retry policy: max attempts %d must be >= 1", p.MaxAttempts)
	case p.InitialBackoff < 0 || p.MaxBackoff < 0:
		return invalid("retry policy: backoffs must be >= 0")
	case p.MaxBackoff < p.InitialBackoff:
		return invalid("retry policy: max backoff %v is below initial backoff %v", p.MaxBackoff, p.InitialBackoff)
	case !(p.Multiplier >= 1) || math.IsInf(p.Multiplier, 1):
		return invalid("retry policy: multiplier %v must be >= 1", p.Multiplier)
	case !(p.Jitter >= 0 && p.Jitter <= 1):
		return invalid("retry policy: jitter %v must be within [0, 1]", p.Jitter)
	}
	return nil
}

type consumerConfig struct {
	commonConfig
	startOffset       StartOffset
	minBytes          int
	maxBytes          int
	maxWait           time.Duration
	bufferBytes       int64
	isolation         IsolationLevel
	topics            []string // besides the constructor's
	sessionTimeout    time.Duration
	heartbeatInterval time.Duration
	rebalanceTimeout  time.Duration
	commitInterval    time.Duration
	commitTimeout     time.Duration
	retry             RetryPolicy
	shutdownTimeout   time.Duration
	groupBalancers    []kafka.GroupBalancer
	groupProtocols    []GroupProtocol
	instanceID        string
	rack              string
	missingFatal      bool
	onAssigned        func(map[string][]int)
	onRevoked         func(map[string][]int)
	dialer            *kafka.Dialer
	recoverer         Recoverer
	lanes             int
	stuckThreshold    time.Duration
	retryableIf       func(error) bool
	batchMaxMessages  int
	batchMaxBytes     int
	batchLinger       time.Duration
}

func defaultConsumerConfig() consumerConfig {
	return consumerConfig{
		commonConfig: commonConfig{
			clientID:    "mq",
			dialTimeout: 10 * time.Second,
		},
		startOffset:       StartEarliest,
		minBytes:          1,
		maxBytes:          1 << 20,
		maxWait:           250 * time.Millisecond,
		bufferBytes:       32 << 20,
		isolation:         ReadCommitted,
		sessionTimeout:    10 * time.Second,
		heartbeatInterval: time.Second,
		rebalanceTimeout:  30 * time.Second,
		commitInterval:    time.Second,
		commitTimeout:     5 * time.Second,
		retry:             DefaultRetryPolicy,
		shutdownTimeout:   30 * time.Second,
		lanes:             1,
		stuckThreshold:    time.Minute,
		batchMaxMessages:  100,
	}
}

// wireDialer returns the connection settings of the consumer's fetch
// engine: those of the kafka-go dialer given with WithDialer (which the
// group membership uses too), else the consumer's own.
func (c *consumerConfig) wireDialer() *wire.Dialer {
	d := &wire.Dialer{ClientID: c.clientID, DialTimeout: c.dialTimeout, TLS: c.tls, SASL: c.sasl}
	kd := c.dialer
	if kd == nil {
		return d
	}
	d.TLS, d.SASL = kd.TLS, kd.SASLMechanism
	if kd.ClientID != "" {
		d.ClientID = kd.ClientID
	}
	if kd.Timeout > 0 {
		d.DialTimeout = kd.Timeout
	}
	dial := kd.DialFunc
	if dial == nil {
		dial = (&net.Dialer{LocalAddr: kd.LocalAddr, FallbackDelay: kd.FallbackDelay, KeepAlive: kd.KeepAlive}).DialContext
	}
	if r := kd.Resolver; r != nil {
		// As kafka-go does: the resolver's first address, the broker's
		// port unless it gives none.
		next := dial
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			addrs, err := r.LookupHost(ctx, host)
			if err != nil {
				return nil, fmt.Errorf("resolving %s: %w", host, err)
			}
			if len(addrs) > 0 {
				h, p, err := net.SplitHostPort(addrs[0])
				if err != nil {
					h, p = addrs[0], ""
				}
				host = h
				if port == "" {
					port = p
				}
			}
			return next(ctx, network, net.JoinHostPort(host, port))
		}
	}
	d.Dial = dial
	return d
}

func (c *consumerConfig) validate() error {
	if err := c.commonConfig.validate(); err != nil {
		return err
	}
	switch {
	case c.startOffset != StartEarliest && c.startOffset != StartLatest:
		return invalid("start offset %d must be StartEarliest or StartLatest", int64(c.startOffset))
	case c.minBytes < 1 || c.minBytes > math.MaxInt32:
		return invalid("min bytes %d must be within [1, %d]", c.minBytes, math.MaxInt32)
	case c.maxBytes < 1 || c.maxBytes > math.MaxInt32:
		return invalid("max bytes %d must be within [1, %d]", c.maxBytes, math.MaxInt32)
	case c.maxWait < time.Millisecond || c.maxWait/time.Millisecond >= math.MaxInt32:
		return invalid("max wait %v must be within [1ms, %v)", c.maxWait, time.Duration(math.MaxInt32)*time.Millisecond)
	case c.bufferBytes < 1:
		return invalid("fetch buffer bytes %d must be >= 1", c.bufferBytes)
	case c.isolation != ReadCommitted && c.isolation != ReadUncommitted:
		return invalid("isolation level %d must be ReadCommitted or ReadUncommitted", int(c.isolation))
	case c.heartbeatInterval <= 0:
		return invalid("heartbeat interval %v must be > 0", c.heartbeatInterval)
	case c.sessionTimeout <= c.heartbeatInterval:
		return invalid("session timeout %v must be above the heartbeat interval %v", c.sessionTimeout, c.heartbeatInterval)
	case c.rebalanceTimeout <= 0:
		return invalid("rebalance timeout %v must be > 0", c.rebalanceTimeout)
	case c.commitInterval <= 0:
		return invalid("commit interval %v must be > 0", c.commitInterval)
	case c.commitTimeout <= 0:
		return invalid("commit timeout %v must be > 0", c.commitTimeout)
	case c.shutdownTimeout <= 0:
		return invalid("shutdown timeout %v must be > 0", c.shutdownTimeout)
	case c.stuckThreshold <= 0:
		return invalid("stuck threshold %v must be > 0", c.stuckThreshold)
	case c.lanes < 1 || c.lanes > 1024:
		return invalid("lanes %d must be within [1, 1024]", c.lanes)
	case c.batchMaxMessages < 1:
		return invalid("batch max messages %d must be >= 1", c.batchMaxMessages)
	case c.batchMaxBytes < 0:
		return invalid("batch max bytes %d must be >= 0", c.batchMaxBytes)
	case c.batchLinger < 0:
		return invalid("batch linger %v must be >= 0", c.batchLinger)
	case c.groupProtocols != nil && c.groupBalancers != nil:
		return invalid("WithGroupProtocol and WithGroupBalancers exclude each other")
	}
	seen := make(map[GroupProtocol]bool)
	for _, p := range c.groupProtocols {
		switch p {
		case GroupProtocolRange, GroupProtocolRoundRobin, GroupProtocolCooperativeSticky:
		default:
			return invalid("unknown group protocol %q (want %q, %q or %q)", string(p),
				GroupProtocolRange, GroupProtocolRoundRobin, GroupProtocolCooperativeSticky)
		}
		if seen[p] {
			return invalid("group protocol %q named twice", string(p))
		}
		seen[p] = true
	}
	if c.groupProtocols != nil && len(c.groupProtocols) == 0 {
		return invalid("WithGroupProtocol needs at least one protocol")
	}
	for _, b := range c.groupBalancers {
		if b == nil {
			return invalid("nil group balancer")
		}
	}
	// kafka-go encodes these as int32 milliseconds.
	for name, d := range map[string]time.Duration{
		"session timeout": c.sessionTimeout, "heartbeat interval": c.heartbeatInterval,
		"rebalance timeout": c.rebalanceTimeout, "commit timeout": c.commitTimeout,
	} {
		if d/time.Millisecond >= math.MaxInt32 {
			return invalid("%s %v is too large (max %v)", name, d, time.Duration(math.MaxInt32-1)*time.Millisecond)
		}
	}
	if err := c.recoverer.validate(); err != nil {
		return err
	}
	return c.retry.validate()
}

// WithStartOffset sets where partitions without a committed offset are read
// from, and where a partition whose offset is out of range (its records were
// deleted by retention, or the log was truncated) starts again. This
// overrides the default of [StartEarliest].
func WithStartOffset(o StartOffset) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.startOffset = o })
}

// WithFetchMinBytes sets how many bytes a fetch waits for (up to the max
// wait) before the broker answers. This overrides the default of 1.
func WithFetchMinBytes(n int) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.minBytes = n })
}

// WithFetchMaxBytes caps the bytes one fetch asks for per partition (the
// Java client's max.partition.fetch.bytes); the fetch buffer's share of a
// partition can make fetches smaller (see [WithFetchBufferBytes]). A record
// batch larger than this is still fetched, whole. This overrides the
// default of 1 MiB.
func WithFetchMaxBytes(n int) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.maxBytes = n })
}

// WithFetchMaxWait bounds how long a broker holds a fetch that has no data
// yet (Kafka counts it in milliseconds), and so how late a record written
// to an idle partition can be fetched. This overrides the default of 250ms.
func WithFetchMaxWait(d time.Duration) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.maxWait = d })
}

// WithFetchBufferBytes sets the memory budget for records fetched ahead of
// the handlers, for the whole consumer: each assigned partition may hold an
// equal share of it (counted decoded, until its records were passed to the
// handlers), and a partition that holds its share is not fetched until its
// handlers catch up. Memory therefore does not grow with the number of
// partitions, and a slow partition cannot take the others' room. A record
// batch is fetched whole, so with more partitions than bytes/batch size a
// partition may hold one batch beyond its share. This overrides the default
// of 32 MiB.
func WithFetchBufferBytes(n int64) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.bufferBytes = n })
}

// IsolationLevel says which records of transactional producers a consumer
// reads.
type IsolationLevel int8

// Isolation levels. Transaction markers (control records) never reach
// handlers in either level, and committed offsets move past them.
const (
	// ReadUncommitted reads every data record, including those of aborted
	// and still open transactions (the Java client's default).
	ReadUncommitted IsolationLevel = 0
	// ReadCommitted reads records of committed transactions and
	// non-transactional records, up to the last stable offset: records of
	// an open transaction wait until it commits; aborted ones are skipped.
	// It is the default.
	ReadCommitted IsolationLevel = 1
)

// WithIsolationLevel sets which transactional records the consumer reads.
// This overrides the default of [ReadCommitted]: on a topic without
// transactions it costs nothing (the last stable offset is the high
// watermark), and on one with transactions it keeps aborted writes — which
// the producer's application considered never to have happened — away from
// handlers, as librdkafka (and so kcat and confluent-kafka-go) does by
// default. The Java client's default is ReadUncommitted.
func WithIsolationLevel(l IsolationLevel) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.isolation = l })
}

// WithTopics makes the consumer read topics in addition to the one passed
// to [NewKafkaConsumer], in the same group, with the same handlers and
// codec. Each topic's partitions are fetched, processed in order and
// committed on their own; a recoverer's retry and dead-letter topics are
// per topic ("<topic>.retry.N", "<topic>.dlt"). Repeated use is additive;
// a topic named twice is read once.
func WithTopics(topics ...string) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.topics = append(c.topics, topics...) })
}

// WithSessionTimeout sets the group session timeout: a member silent for
// longer is evicted. This overrides the default of 10s.
func WithSessionTimeout(d time.Duration) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.sessionTimeout = d })
}

// WithHeartbeatInterval sets how often the member heartbeats; it also bounds
// how fast a rebalance is noticed. This overrides the default of 1s.
func WithHeartbeatInterval(d time.Duration) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.heartbeatInterval = d })
}

// WithRebalanceTimeout sets how long the group waits for members to rejoin
// during a rebalance. In-flight handlers of revoked partitions must finish
// within it (the member keeps heartbeating while they drain, so they may
// take longer than the session timeout, but not longer than this). This
// overrides the default of 30s.
func WithRebalanceTimeout(d time.Duration) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.rebalanceTimeout = d })
}

// WithCommitInterval sets how often processed offsets are committed. Offsets
// are also always committed when partitions are revoked and at shutdown. This
// overrides the default of 1s.
func WithCommitInterval(d time.Duration) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.commitInterval = d })
}

// WithRetryPolicy sets how failing handlers are retried. This overrides
// [DefaultRetryPolicy].
func WithRetryPolicy(p RetryPolicy) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.retry = p })
}

// WithShutdownTimeout bounds how long in-flight handlers may run after the
// consumer is asked to stop (context cancelled or Close) or its partitions are
// revoked; after it, their context is cancelled and their messages stay
// uncommitted. This overrides the default of 30s.
func WithShutdownTimeout(d time.Duration) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.shutdownTimeout = d })
}

// WithGroupBalancers sets the partition assignment strategies as kafka-go
// balancers, in order of preference. kafka.RangeGroupBalancer and
// kafka.RoundRobinGroupBalancer become mq's own range and round-robin
// assignors, which assign as Java's do; any other balancer runs as given
// (eagerly), under its own protocol name.
//
// Deprecated: use [WithGroupProtocol], whose protocols Java members share.
func WithGroupBalancers(b ...kafka.GroupBalancer) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.groupBalancers = b })
}

// GroupProtocol names a partition assignment strategy of the classic
// consumer-group protocol, as the Java client names it
// (partition.assignment.strategy).
type GroupProtocol string

// Group protocols. Range and round-robin rebalance eagerly: at every
// rebalance each member stops all its partitions, commits and rejoins.
// Cooperative-sticky rebalances incrementally (KIP-429): members keep the
// partitions that stay with them, processing them through the rebalance,
// and only partitions that move are drained, committed and handed over.
const (
	GroupProtocolRange             GroupProtocol = "range"
	GroupProtocolRoundRobin        GroupProtocol = "roundrobin"
	GroupProtocolCooperativeSticky GroupProtocol = "cooperative-sticky"
)

// WithGroupProtocol sets the assignment strategies the member offers, in
// order of preference; the group uses the first one every member offers,
// and its assignment is exactly what a Java leader computes. The default is
// Java's: [GroupProtocolRange], then [GroupProtocolCooperativeSticky].
// Offer [GroupProtocolCooperativeSticky] first (or alone) for incremental
// rebalancing; a group moves from eager to cooperative by two rolling
// restarts, as in Java (first offering both, cooperative second, then
// cooperative first).
func WithGroupProtocol(protocols ...GroupProtocol) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.groupProtocols = append([]GroupProtocol{}, protocols...) })
}

// WithGroupInstanceID makes the consumer a static member of its group
// (KIP-345, Java's group.instance.id): restarted with the same ID within
// the session timeout, it gets its partitions back without a rebalance, and
// it does not leave the group when it stops (the group rebalances only when
// its session times out). Every member of the group needs its own ID, for
// example the pod name of a StatefulSet; a second member with the same ID
// fences the first. Consider a longer session timeout with it.
func WithGroupInstanceID(id string) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.instanceID = id })
}

// WithClientRack sets the rack of the consumer (Java's client.rack). It is
// sent in the member's subscription; the range and cooperative-sticky
// assignors then prefer partitions with a replica in the same rack
// (KIP-881).
func WithClientRack(rack string) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.rack = rack })
}

// WithMissingTopicsFatal makes [KafkaConsumer.Run] return an error wrapping
// [ErrTopicNotFound] when a topic it consumes does not exist, rather than
// waiting for it (Spring Kafka's missingTopicsFatal). By default the
// consumer waits, checking again with backoff (1s doubling to 30s), logs one
// line per check, and [KafkaConsumer.Ready] names the missing topics.
func WithMissingTopicsFatal() ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.missingFatal = true })
}

// WithOnAssigned sets a function called with the partitions (by topic) that a
// new group generation assigned to this member, before they are consumed.
func WithOnAssigned(fn func(assigned map[string][]int)) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.onAssigned = fn })
}

// WithOnRevoked sets a function called with the partitions (by topic) this
// member gave up, after their processed offsets were committed.
func WithOnRevoked(fn func(revoked map[string][]int)) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.onRevoked = fn })
}

// WithDialer makes the consumer use a caller-configured kafka-go dialer (for
// TLS, SASL or a custom resolver) for group membership and for fetching:
// its TLS, SASL mechanism, client ID, timeout, dial function and resolver
// apply. The client ID and dial timeout options do not change it.
func WithDialer(d *kafka.Dialer) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.dialer = d })
}

// WithRecoverer sets what happens to a message whose handlers gave up on it
// or whose value cannot be decoded. This overrides the default
// [StopRecoverer].
func WithRecoverer(r Recoverer) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.recoverer = r })
}

// WithRetryableIf sets which handler errors are worth retrying: an error for
// which retryable returns false is not retried, and the message goes to the
// recoverer at once, exactly as with [Permanent] (with [RetryTopicRecoverer],
// straight to the dead-letter topic). Build retryable with [NotRetryable] or
// [RetryableOnly], or write your own (errors.As picks out error types).
// Errors marked with [Permanent] are never retried, whatever retryable says.
// A handler's [WithHandlerRetryableIf] wins over it. The default, like a nil
// retryable, retries every error.
func WithRetryableIf(retryable func(err error) bool) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.retryableIf = retryable })
}

// WithLanes processes up to n messages of each partition concurrently, in n
// lanes chosen by key hash: messages with the same key stay in order, messages
// with different keys overlap (nil keys are spread by offset). Offsets are
// still committed only up to the first message not yet fully handled, so
// at-least-once holds. Use it for I/O-bound handlers whose throughput would
// otherwise be capped at one message per partition at a time. Retry topics
// are always consumed with one lane. This overrides the default of 1.
func WithLanes(n int) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.lanes = n })
}

// WithBatchMaxMessages caps the messages of a batch handed to a
// [BatchHandler]. This overrides the default of 100.
func WithBatchMaxMessages(n int) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.batchMaxMessages = n })
}

// WithBatchMaxBytes caps the bytes (keys and raw values) of a batch handed
// to a [BatchHandler]; a message larger than n alone makes a batch of one.
// This overrides the default of 0, no cap.
func WithBatchMaxBytes(n int) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.batchMaxBytes = n })
}

// WithBatchLinger sets how long a partition's batch that is not full may
// wait for more messages to be fetched before it is handed to the
// [BatchHandler]s (measured from its first message). With the default of
// 0, a batch holds what was fetched and is handed over when the fetched
// records run out, never waiting for more.
func WithBatchLinger(d time.Duration) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.batchLinger = d })
}

// WithStuckThreshold sets how long a partition with work to do may go
// without completing a message before health checks call it stuck. This
// overrides the default of 1 minute.
func WithStuckThreshold(d time.Duration) ConsumerOption {
	return consumerOptionFunc(func(c *consumerConfig) { c.stuckThreshold = d })
}

// ----- redrive options -----

// RedriveOption configures [Redrive]. The common options ([WithLogger],
// [WithClientID], [WithDialTimeout], [WithTLS], [WithSASL]) are
// RedriveOptions too; [WithCodec] and [WithObserver] are ignored by Redrive.
type RedriveOption interface {
	applyRedrive(*redriveConfig)
}

type redriveOptionFunc func(*redriveConfig)

func (f redriveOptionFunc) applyRedrive(c *redriveConfig) { f(c) }

type redriveConfig struct {
	commonConfig
	target string
	filter func(Message[[]byte]) bool
	group  string
	dryRun bool
}

// WithRedriveTarget sends every message to topic instead of the topic named by
// its [HeaderOriginalTopic] header.
func WithRedriveTarget(topic string) RedriveOption {
	return redriveOptionFunc(func(c *redriveConfig) { c.target = topic })
}

// WithRedriveFilter redrives only the messages for which keep returns true;
// the others are counted as filtered out and left alone.
func WithRedriveFilter(keep func(Message[[]byte]) bool) RedriveOption {
	return redriveOptionFunc(func(c *redriveConfig) { c.filter = keep })
}

// WithRedriveHeader redrives only the messages whose header key has the given
// value. For the comma-separated lists [HeaderFailedHandler] and
// [HeaderHandlersDone] it matches a list that names value: [HeaderFailedHandler]
// = "persist" selects every message on which persist failed, alone or with
// other handlers. Repeated uses must all match.
func WithRedriveHeader(key, value string) RedriveOption {
	list := key == HeaderFailedHandler || key == HeaderHandlersDone
	return redriveOptionFunc(func(c *redriveConfig) {
		prev := c.filter
		c.filter = func(m Message[[]byte]) bool {
			v, ok := m.Header(key)
			if !ok || (string(v) != value && (!list || !slices.Contains(strings.Split(string(v), ","), value))) {
				return false
			}
			return prev == nil || prev(m)
		}
	})
}

// WithRedriveGroup records progress as the committed offsets of consumer
// group group, so that a later Redrive with the same group starts where this
// one ended instead of at the beginning of the dead-letter topic. Messages a
// filter left out count as passed for that group.
func WithRedriveGroup(group string) RedriveOption {
	return redriveOptionFunc(func(c *redriveConfig) { c.group = group })
}

// WithRedriveDryRun counts what would be redriven without writing anything.
func WithRedriveDryRun(enabled bool) RedriveOption {
	return redriveOptionFunc(func(c *redriveConfig) { c.dryRun = enabled })
}

// ----- handler options -----

// HandlerOption configures one registered handler.
type HandlerOption interface {
	applyHandler(*handlerConfig)
}

type handlerOptionFunc func(*handlerConfig)

func (f handlerOptionFunc) applyHandler(c *handlerConfig) { f(c) }

type handlerConfig struct {
	name        string
	retry       *RetryPolicy
	timeout     time.Duration
	retryableIf func(error) bool
}

// WithHandlerName names the handler in logs and errors. The default is
// "handler-N", N being its registration index.
func WithHandlerName(name string) HandlerOption {
	return handlerOptionFunc(func(c *handlerConfig) { c.name = name })
}

// WithHandlerRetryPolicy overrides the consumer's retry policy for this handler.
func WithHandlerRetryPolicy(p RetryPolicy) HandlerOption {
	return handlerOptionFunc(func(c *handlerConfig) { c.retry = &p })
}

// WithHandlerTimeout bounds each call of this handler with [Timeout].
func WithHandlerTimeout(d time.Duration) HandlerOption {
	return handlerOptionFunc(func(c *handlerConfig) { c.timeout = d })
}

// WithHandlerRetryableIf overrides the consumer's [WithRetryableIf] for this
// handler: its errors for which retryable returns false are not retried. A
// nil retryable keeps the consumer's.
func WithHandlerRetryableIf(retryable func(err error) bool) HandlerOption {
	return handlerOptionFunc(func(c *handlerConfig) { c.retryableIf = retryable })
}

// ----- admin options -----

// AdminOption configures the admin functions: [CreateTopics],
// [DeleteTopics], [DescribeTopic], [GroupOffsets] and [ResetOffsets]. The
// common options ([WithLogger], [WithClientID], [WithDialTimeout], [WithTLS],
// [WithSASL]) are AdminOptions too; [WithCodec] and [WithObserver] are
// ignored by them, and the WithReset… options are read by [ResetOffsets]
// only.
type AdminOption interface {
	applyAdmin(*adminConfig)
}

type adminOptionFunc func(*adminConfig)

func (f adminOptionFunc) applyAdmin(c *adminConfig) { f(c) }

type adminConfig struct {
	commonConfig
	resetPartitions []int
	resetForce      bool
	resetDryRun     bool
}

// WithResetPartitions makes [ResetOffsets] reset only the given partitions
// instead of every partition of the topic. It cannot be combined with
// [ResetToOffsets], which names its partitions itself.
func WithResetPartitions(partitions ...int) AdminOption {
	return adminOptionFunc(func(c *adminConfig) { c.resetPartitions = append([]int(nil), partitions...) })
}

// WithResetForce makes [ResetOffsets] proceed when the group has members:
// it first removes them from the group (as Kafka's
// kafka-streams-application-reset --force does, KIP-571), waits for the group
// to be empty, then commits. It is meant for members that are gone but not
// yet expired (a crashed process, a long session timeout). A consumer that is
// still running rejoins at its next heartbeat and may commit its own
// positions over the reset: stop consumers before resetting their group.
func WithResetForce(enabled bool) AdminOption {
	return adminOptionFunc(func(c *adminConfig) { c.resetForce = enabled })
}

// WithResetDryRun makes [ResetOffsets] compute and return the plan without
// committing anything (and without removing members, even when forced).
func WithResetDryRun(enabled bool) AdminOption {
	return adminOptionFunc(func(c *adminConfig) { c.resetDryRun = enabled })
}
