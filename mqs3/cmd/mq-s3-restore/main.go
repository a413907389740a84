// Command mq-s3-restore republishes a topic's backup, made by mqs3's backup
// handler, from an S3 bucket to a Kafka topic: per source partition in offset
// order, keeping keys, values, headers and timestamps, each record to the
// partition it was read from (or by key with -by-key). It prints the plan and
// what it did.
//
//	mq-s3-restore -bucket backups -prefix chat -to chat-messages -dry-run
//	mq-s3-restore -endpoint http://127.0.0.1:8333 -anonymous -bucket backups -prefix chat -to chat-messages
//	mq-s3-restore -bucket backups -prefix chat -source chat-messages -to chat-replay -by-key
//
// Brokers default to $KAFKA_BROKERS, the endpoint to $MQ_S3_ENDPOINT (empty:
// AWS S3); credentials come from the AWS default chain unless -anonymous. The
// target topic must exist. Exit status: 0 done, 1 failed, 2 usage.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/mqkit/mq/mqs3"
	"go.uber.org/zap"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mq-s3-restore", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		brokers     = fs.String("brokers", "", "comma-separated broker addresses (default $KAFKA_BROKERS)")
		endpoint    = fs.String("endpoint", "", "S3 endpoint URL, e.g. http://127.0.0.1:8333 (default $MQ_S3_ENDPOINT; empty: AWS S3)")
		region      = fs.String("region", "", "S3 region (default: the AWS configuration's, else us-east-1)")
		anonymous   = fs.Bool("anonymous", false, "send unsigned S3 requests (a local SeaweedFS)")
		bucket      = fs.String("bucket", "", "bucket holding the backup (required)")
		prefix      = fs.String("prefix", "", "key prefix the backup was written under")
		source      = fs.String("source", "", "source topic, when the prefix holds the backups of several")
		to          = fs.String("to", "", "target topic (default: the source topic)")
		byKey       = fs.Bool("by-key", false, "partition by key instead of keeping each record's source partition")
		concurrency = fs.Int("concurrency", 4, "partitions restored at a time")
		dryRun      = fs.Bool("dry-run", false, "print the plan and count the records, produce nothing")
		verbose     = fs.Bool("v", false, "log progress")
	)
	if err := fs.Parse(args); err != nil {
		return 2
	}
	// Not the flags' defaults: -h would print them twice.
	if *brokers == "" {
		*brokers = os.Getenv("KAFKA_BROKERS")
	}
	if *endpoint == "" {
		*endpoint = os.Getenv("MQ_S3_ENDPOINT")
	}
	if *bucket == "" || (!*dryRun && *brokers == "") || fs.NArg() > 0 {
		fmt.Fprintln(stderr, "mq-s3-restore: -bucket and (unless -dry-run) -brokers or KAFKA_BROKERS are required")
		fs.Usage()
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	client, err := mqs3.NewClient(ctx, mqs3.ClientConfig{Endpoint: *endpoint, Region: *region, Anonymous: *anonymous})
	if err != nil {
		fmt.Fprintln(stderr, "mq-s3-restore:", err)
		return 1
	}
	opts := []mqs3.RestoreOption{mqs3.WithSourceTopic(*source), mqs3.WithPartitionByKey(*byKey),
		mqs3.WithConcurrency(*concurrency), mqs3.WithDryRun(*dryRun)}
	if *verbose {
		l, _ := zap.NewDevelopment()
		opts = append(opts, mqs3.WithLogger(l))
	}
	plan, err := mqs3.PlanRestore(ctx, client, *bucket, *prefix, opts...)
	if err != nil {
		fmt.Fprintln(stderr, "mq-s3-restore:", err)
		return 1
	}
	target := *to
	if target == "" {
		target = plan.Topic
	}
	printPlan(stdout, plan, target, *byKey)
	opts = append(opts, mqs3.WithSourceTopic(plan.Topic))
	var addrs []string
	if *brokers != "" {
		addrs = strings.Split(*brokers, ",")
	}
	stats, err := mqs3.Restore(ctx, client, *bucket, *prefix, addrs, target, opts...)
	fmt.Fprintf(stdout, "objects=%d records=%d duplicates_skipped=%d dry_run=%v\n", stats.Objects, stats.Records, stats.Duplicates, *dryRun)
	if err != nil {
		fmt.Fprintln(stderr, "mq-s3-restore:", err)
		return 1
	}
	return 0
}

func printPlan(w io.Writer, plan *mqs3.Plan, target string, byKey bool) {
	mapping := "same partition"
	if byKey {
		mapping = "partition by key"
	}
	fmt.Fprintf(w, "restore s3://%s/%s topic %s -> %s (%s)\n", plan.Bucket, plan.Prefix, plan.Topic, target, mapping)
	for _, pp := range plan.Partitions {
		fmt.Fprintf(w, "  partition %d: %d object(s), offsets %d..%d, %d bytes", pp.Partition, len(pp.Objects), pp.First(), pp.Last(), pp.Bytes)
		if len(pp.Redundant) > 0 {
			fmt.Fprintf(w, ", %d redundant skipped", len(pp.Redundant))
		}
		if pp.Overlapping > 0 {
			fmt.Fprintf(w, ", %d overlapping (duplicates skipped)", pp.Overlapping)
		}
		fmt.Fprintln(w)
	}
	if plan.Ignored > 0 {
		fmt.Fprintf(w, "  %d other key(s) under the prefix ignored\n", plan.Ignored)
	}
}
