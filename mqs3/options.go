package mqs3

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/mqkit/mq"
	"github.com/segmentio/kafka-go/sasl"
	"go.uber.org/zap"
)

// ErrInvalidOption is wrapped by the errors of [New] and [Restore] for bad
// arguments or options.
var ErrInvalidOption = errors.New("mqs3: invalid option")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrInvalidOption}, args...)...)
}

// Option configures a [Backup].
type Option interface {
	applyBackup(*backupConfig)
}

// RestoreOption configures [Restore] and [PlanRestore].
type RestoreOption interface {
	applyRestore(*restoreConfig)
}

// CommonOption configures both a [Backup] and [Restore].
type CommonOption interface {
	Option
	RestoreOption
}

type backupOptionFunc func(*backupConfig)

func (f backupOptionFunc) applyBackup(c *backupConfig) { f(c) }

type restoreOptionFunc func(*restoreConfig)

func (f restoreOptionFunc) applyRestore(c *restoreConfig) { f(c) }

type commonOption func(*commonConfig)

func (f commonOption) applyBackup(c *backupConfig)   { f(&c.commonConfig) }
func (f commonOption) applyRestore(c *restoreConfig) { f(&c.commonConfig) }

type commonConfig struct {
	log *zap.Logger
}

func (c *commonConfig) logger() *zap.Logger {
	if c.log == nil {
		return zap.NewNop()
	}
	return c.log
}

// WithLogger logs retries, uploads and restore progress to l. The default
// logs nothing.
func WithLogger(l *zap.Logger) CommonOption {
	return commonOption(func(c *commonConfig) { c.log = l })
}

// ----- backup -----

type backupConfig struct {
	commonConfig
	prefix         string
	gzip           bool
	maxMessages    int
	maxBytes       int
	initialBackoff time.Duration
	maxBackoff     time.Duration
	maxRetryTime   time.Duration
}

func defaultBackupConfig() backupConfig {
	return backupConfig{
		maxMessages:    1000,
		maxBytes:       16 << 20,
		initialBackoff: 100 * time.Millisecond,
		maxBackoff:     10 * time.Second,
	}
}

func (c *backupConfig) validate() error {
	switch {
	case c.maxMessages < 1:
		return invalid("max messages %d must be >= 1", c.maxMessages)
	case c.maxBytes < 1:
		return invalid("max bytes %d must be >= 1", c.maxBytes)
	case c.initialBackoff <= 0 || c.maxBackoff < c.initialBackoff:
		return invalid("retry backoff from %v to %v: want 0 < initial <= max", c.initialBackoff, c.maxBackoff)
	case c.maxRetryTime < 0:
		return invalid("max retry time %v must be >= 0", c.maxRetryTime)
	}
	return nil
}

// WithPrefix puts every object under prefix ("backups/chat" gives keys
// "backups/chat/<topic>/..."). The default is no prefix.
func WithPrefix(prefix string) Option {
	return backupOptionFunc(func(c *backupConfig) { c.prefix = prefix })
}

// WithGzip compresses objects with gzip (keys then end in .jsonl.gz).
func WithGzip(enabled bool) Option {
	return backupOptionFunc(func(c *backupConfig) { c.gzip = enabled })
}

// WithMaxMessages caps the records of one object: [Backup.Store] splits
// longer runs. This overrides the default of 1000.
func WithMaxMessages(n int) Option {
	return backupOptionFunc(func(c *backupConfig) { c.maxMessages = n })
}

// WithMaxBytes caps the JSON bytes (before compression) of one object; an
// object always holds at least one record. This overrides the default of
// 16 MiB.
func WithMaxBytes(n int) Option {
	return backupOptionFunc(func(c *backupConfig) { c.maxBytes = n })
}

// WithRetryBackoff sets the wait after a failed S3 request, doubling from
// initial up to max (with ±20% jitter). This overrides the default of 100ms
// up to 10s.
func WithRetryBackoff(initial, max time.Duration) Option {
	return backupOptionFunc(func(c *backupConfig) { c.initialBackoff, c.maxBackoff = initial, max })
}

// WithMaxRetryTime gives up on an S3 request that has failed for d and
// returns its error (the consumer's retry policy then applies). The default,
// 0, retries until the context ends, so an outage holds the partition back
// instead of failing it.
func WithMaxRetryTime(d time.Duration) Option {
	return backupOptionFunc(func(c *backupConfig) { c.maxRetryTime = d })
}

// ----- restore -----

type restoreConfig struct {
	commonConfig
	sourceTopic string
	byKey       bool
	dryRun      bool
	concurrency int
	tls         *tls.Config
	sasl        sasl.Mechanism
	producer    []mq.ProducerOption
}

func defaultRestoreConfig() restoreConfig {
	return restoreConfig{concurrency: 4}
}

// WithSourceTopic restores only the backup of topic when the prefix holds
// several topics. With one topic under the prefix it is optional.
func WithSourceTopic(topic string) RestoreOption {
	return restoreOptionFunc(func(c *restoreConfig) { c.sourceTopic = topic })
}

// WithPartitionByKey sends records to the partition the producer's default
// partitioner picks for their key, instead of the partition they were read
// from. Use it when the target topic has fewer partitions than the source:
// the order of records with the same key is kept, the order across keys is
// not.
func WithPartitionByKey(enabled bool) RestoreOption {
	return restoreOptionFunc(func(c *restoreConfig) { c.byKey = enabled })
}

// WithDryRun makes [Restore] read the plan and count the records without
// producing anything.
func WithDryRun(enabled bool) RestoreOption {
	return restoreOptionFunc(func(c *restoreConfig) { c.dryRun = enabled })
}

// WithConcurrency restores up to n partitions at a time. This overrides the
// default of 4.
func WithConcurrency(n int) RestoreOption {
	return restoreOptionFunc(func(c *restoreConfig) { c.concurrency = n })
}

// WithTLS connects to the brokers with TLS (for the producer and the
// metadata request that counts the target's partitions).
func WithTLS(cfg *tls.Config) RestoreOption {
	return restoreOptionFunc(func(c *restoreConfig) { c.tls = cfg })
}

// WithSASL authenticates to the brokers with m.
func WithSASL(m sasl.Mechanism) RestoreOption {
	return restoreOptionFunc(func(c *restoreConfig) { c.sasl = m })
}

// WithProducerOptions passes options to the restore's producers (after
// its own: BytesCodec, AcksAll, the partition choice), e.g.
// [mq.WithBatchBytes] for records above 1 MiB.
func WithProducerOptions(opts ...mq.ProducerOption) RestoreOption {
	return restoreOptionFunc(func(c *restoreConfig) { c.producer = append(c.producer, opts...) })
}
