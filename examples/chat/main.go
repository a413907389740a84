// Command chat runs the chat backend's message pipeline end to end: it sends
// chat messages through Kafka with a [mq.Producer], and a [mq.KafkaConsumer]
// in group chat-service stores each one twice, in an embedded SQLite database
// (handler "persist", an idempotent upsert) and in a JSON-lines backup file
// (handler "backup") or, given a bucket, in S3 objects written by mqs3.
//
// It uses an in-process Kafka broker unless KAFKA_BROKERS names a cluster:
//
//	go run ./examples/chat                      # embedded broker, 1000 messages
//	go run ./examples/chat -n 50000 -data /tmp/chat
//	KAFKA_BROKERS=localhost:9092 go run ./examples/chat -follow
//	go run ./examples/chat -s3-endpoint http://127.0.0.1:8333 -s3-bucket chat -s3-anonymous
//
// It prints a summary and exits with status 1 when a message was lost or the
// consumer failed, 2 on bad flags (before anything starts). Several
// instances may run at once as members of the group; give them the same
// -data directory, since each checks its messages in the shared outputs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/mqkit/mq/mqtest"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func main() {
	os.Exit(run())
}

// run parses the flags, runs the service and returns the exit code.
func run() int {
	cfg := DefaultConfig()
	flag.IntVar(&cfg.N, "n", cfg.N, "number of messages to send")
	flag.IntVar(&cfg.Conversations, "conversations", cfg.Conversations, "number of conversations the messages are spread over")
	flag.StringVar(&cfg.DataDir, "data", "", "directory for "+dbFile+" and "+backupFile+" (default: a new temporary directory)")
	flag.BoolVar(&cfg.Follow, "follow", false, "keep consuming until SIGINT/SIGTERM instead of stopping once everything sent is stored")
	flag.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "without -follow: how long to wait for the sent messages to be stored")
	flag.StringVar(&cfg.HTTPAddr, "http", "", "serve Prometheus /metrics and /readyz, /livez, /healthz on this address (e.g. 127.0.0.1:8080)")
	flag.StringVar(&cfg.S3.Endpoint, "s3-endpoint", "", "back up to this S3 endpoint, e.g. http://127.0.0.1:8333 (default $MQ_CHAT_S3_ENDPOINT; empty with -s3-bucket: AWS S3)")
	flag.StringVar(&cfg.S3.Bucket, "s3-bucket", "", "back up to this S3 bucket instead of "+backupFile+" (default $MQ_CHAT_S3_BUCKET)")
	flag.StringVar(&cfg.S3.Prefix, "s3-prefix", "", "key prefix of the backup objects (default $MQ_CHAT_S3_PREFIX or chat)")
	flag.BoolVar(&cfg.S3.Anonymous, "s3-anonymous", false, "unsigned S3 requests, for a local SeaweedFS (default: $MQ_CHAT_S3_ANONYMOUS=1; else AWS credentials)")
	verbose := flag.Bool("v", false, "log at debug level")
	flag.Parse()
	s3FromEnv(&cfg.S3, flag.CommandLine)
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "chat: unexpected arguments %q (flags go before them)\n", flag.Args())
		return 2
	}
	if cfg.S3.Bucket == "" && cfg.S3.Endpoint != "" {
		fmt.Fprintln(os.Stderr, "chat: -s3-endpoint needs -s3-bucket")
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		return 2
	}

	log, err := newLogger(*verbose)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		return 2
	}
	defer func() { _ = log.Sync() }()

	if cfg.DataDir == "" {
		if cfg.DataDir, err = os.MkdirTemp("", "mq-chat-"); err != nil {
			fmt.Fprintln(os.Stderr, "chat:", err)
			return 2
		}
	}
	fmt.Printf("chat: data in %s\n", cfg.DataDir)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second signal kills the process
	}()

	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	cluster, err := mqtest.NewCluster(startCtx)
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		return 1
	}
	defer cluster.Close()
	log.Info("broker ready", zap.String("mode", cluster.Mode().String()), zap.Strings("addrs", cluster.Addrs()))

	sum, err := Run(ctx, cfg, cluster.Addrs(), log)
	fmt.Printf("chat: %s\n", sum)
	code := 0
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat: error:", err)
		code = 1
	}
	if p := sum.Problems(); len(p) > 0 {
		fmt.Fprintln(os.Stderr, "chat: LOST OR UNPROCESSED MESSAGES:", strings.Join(p, "; "))
		code = 1
	}
	if sum.Interrupted && !cfg.Follow {
		fmt.Fprintln(os.Stderr, "chat: interrupted")
	}
	return code
}

// s3FromEnv fills the S3 settings whose flags fs was not given from the
// environment (MQ_CHAT_S3_*), the prefix defaulting to "chat". They are not
// the flags' defaults, which -h would print a second time.
func s3FromEnv(c *S3Config, fs *flag.FlagSet) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["s3-endpoint"] {
		c.Endpoint = os.Getenv("MQ_CHAT_S3_ENDPOINT")
	}
	if !set["s3-bucket"] {
		c.Bucket = os.Getenv("MQ_CHAT_S3_BUCKET")
	}
	if !set["s3-prefix"] {
		c.Prefix = os.Getenv("MQ_CHAT_S3_PREFIX")
		if c.Prefix == "" {
			c.Prefix = "chat"
		}
	}
	if !set["s3-anonymous"] {
		c.Anonymous = os.Getenv("MQ_CHAT_S3_ANONYMOUS") == "1"
	}
}

// newLogger returns a compact console logger at info level (debug with -v).
func newLogger(verbose bool) (*zap.Logger, error) {
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
	if verbose {
		cfg.Level = zap.NewAtomicLevelAt(zap.DebugLevel)
	}
	cfg.DisableCaller = true
	cfg.DisableStacktrace = true
	cfg.EncoderConfig.EncodeTime = zapcore.TimeEncoderOfLayout("15:04:05.000")
	return cfg.Build()
}
