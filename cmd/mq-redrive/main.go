// Command mq-redrive moves messages from a dead-letter topic back to the
// topics they came from (their mq-original-topic header), keeping keys, values
// and headers, and prints what it did.
//
//	mq-redrive -brokers localhost:9092 -dlt chat-messages.dlt
//	mq-redrive -dlt chat-messages.dlt -header mq-failed-handler=persist -group redrive-persist
//	mq-redrive -dlt chat-messages.dlt -to chat-messages-replay -dry-run
//
// Brokers default to $KAFKA_BROKERS. A -header filter matches a header with
// that value or, for the list headers mq-failed-handler and
// mq-handlers-done, a list that names it.
//
// Exit status: 0 done (or counted, with -dry-run); 1 failed; 2 bad usage
// (unknown flags or extra arguments included: nothing is read or written).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
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

const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, does what they say and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mq-redrive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		brokers = fs.String("brokers", "", "comma-separated broker addresses (default $KAFKA_BROKERS)")
		dlt     = fs.String("dlt", "", "dead-letter topic to read (required)")
		to      = fs.String("to", "", "send everything to this topic instead of each message's original topic")
		group   = fs.String("group", "", "consumer group recording progress, so a rerun resumes (optional)")
		dryRun  = fs.Bool("dry-run", false, "count what would be redriven, write nothing")
		verbose = fs.Bool("v", false, "log progress")
		headers headerFilters
	)
	fs.Var(&headers, "header", "only redrive messages with this header, as key=value (repeatable; all must match)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mq-redrive: "+format+"\n", a...)
		fs.Usage()
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	if *brokers == "" { // not the flag's default: -h would print it twice
		*brokers = os.Getenv("KAFKA_BROKERS")
	}
	if *brokers == "" || *dlt == "" {
		return usage("-brokers (or KAFKA_BROKERS) and -dlt are required")
	}
	opts := []mq.RedriveOption{mq.WithRedriveTarget(*to), mq.WithRedriveGroup(*group), mq.WithRedriveDryRun(*dryRun)}
	for _, h := range headers {
		k, v, ok := strings.Cut(h, "=")
		if !ok {
			return usage("-header %q: want key=value", h)
		}
		opts = append(opts, mq.WithRedriveHeader(k, v))
	}
	if *verbose {
		l, _ := zap.NewDevelopment()
		opts = append(opts, mq.WithLogger(l))
	}
	stats, err := mq.Redrive(ctx, strings.Split(*brokers, ","), *dlt, opts...)
	fmt.Fprintf(stdout, "read=%d redriven=%d filtered=%d no_target=%d dry_run=%v\n",
		stats.Read, stats.Redriven, stats.Filtered, stats.NoTarget, *dryRun)
	topics := make([]string, 0, len(stats.ByTopic))
	for t := range stats.ByTopic {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		fmt.Fprintf(stdout, "  %s: %d\n", t, stats.ByTopic[t])
	}
	if err != nil {
		fmt.Fprintln(stderr, "mq-redrive:", err)
		return exitFailed
	}
	return exitOK
}
