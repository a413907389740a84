// Command mq-redrive moves messages from a dead-letter topic back to the
// topics they came from (their mq-original-topic header), keeping keys, values
// and headers, and prints what it did.
//
//	mq-redrive -brokers localhost:9092 -dlt chat-messages.dlt
//	mq-redrive -dlt chat-messages.dlt -header mq-failed-handler=persist -group redrive-persist
//	mq-redrive -dlt chat-messages.dlt -to chat-messages-replay -dry-run
//
// Brokers default to $KAFKA_BROKERS.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/mqkit/mq"
	"go.uber.org/zap"
)

type headerFilters []string

func (h *headerFilters) String() string     { return strings.Join(*h, ",") }
func (h *headerFilters) Set(v string) error { *h = append(*h, v); return nil }

func main() {
	os.Exit(run())
}

func run() int {
	var (
		brokers = flag.String("brokers", os.Getenv("KAFKA_BROKERS"), "comma-separated broker addresses (default $KAFKA_BROKERS)")
		dlt     = flag.String("dlt", "", "dead-letter topic to read (required)")
		to      = flag.String("to", "", "send everything to this topic instead of each message's original topic")
		group   = flag.String("group", "", "consumer group recording progress, so a rerun resumes (optional)")
		dryRun  = flag.Bool("dry-run", false, "count what would be redriven, write nothing")
		verbose = flag.Bool("v", false, "log progress")
		headers headerFilters
	)
	flag.Var(&headers, "header", "only redrive messages with this header, as key=value (repeatable; all must match)")
	flag.Parse()
	if *brokers == "" || *dlt == "" {
		fmt.Fprintln(os.Stderr, "mq-redrive: -brokers (or KAFKA_BROKERS) and -dlt are required")
		flag.Usage()
		return 2
	}
	opts := []mq.RedriveOption{mq.WithRedriveTarget(*to), mq.WithRedriveGroup(*group), mq.WithRedriveDryRun(*dryRun)}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok {
			fmt.Fprintf(os.Stderr, "mq-redrive: -header %q: want key=value\n", h)
			return 2
		}
		opts = append(opts, mq.WithRedriveHeader(k, v))
	}
	if *verbose {
		l, _ := zap.NewDevelopment()
		opts = append(opts, mq.WithLogger(l))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stats, err := mq.Redrive(ctx, strings.Split(*brokers, ","), *dlt, opts...)
	fmt.Printf("read=%d redriven=%d filtered=%d no_target=%d dry_run=%v\n",
		stats.Read, stats.Redriven, stats.Filtered, stats.NoTarget, *dryRun)
	topics := make([]string, 0, len(stats.ByTopic))
	for t := range stats.ByTopic {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		fmt.Printf("  %s: %d\n", t, stats.ByTopic[t])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mq-redrive:", err)
		return 1
	}
	return 0
}
