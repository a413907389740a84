// Command mq-offsets shows a consumer group's committed offsets and lag on a
// topic, or resets them, as Kafka's kafka-consumer-groups --reset-offsets
// does.
//
//	mq-offsets -group chat-service -topic chat-messages                  # committed, retained range, lag
//	mq-offsets -group chat-service -topic chat-messages -to-earliest -dry-run
//	mq-offsets -group chat-service -topic chat-messages -to-datetime 2026-12-01T10:00:00Z
//	mq-offsets -group chat-service -topic chat-messages -to-offset 0=1200,2=0
//	mq-offsets -group chat-service -topic chat-messages -to-latest -partitions 1,2 -force
//
// A reset refuses while the group has members (stop its consumers first);
// -force removes members that are gone but not yet expired. -dry-run prints
// the plan and commits nothing. Brokers default to $KAFKA_BROKERS.
//
// Exit status: 0 done (or planned, with -dry-run); 1 failed; 2 bad usage;
// 3 refused because the group is active (nothing committed).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/mqkit/mq"
	"go.uber.org/zap"
)

// Exit codes.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
	exitActive = 3
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args, does what they say and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mq-offsets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		brokers    = fs.String("brokers", "", "comma-separated broker addresses (default $KAFKA_BROKERS)")
		group      = fs.String("group", "", "consumer group (required)")
		topic      = fs.String("topic", "", "topic (required)")
		earliest   = fs.Bool("to-earliest", false, "reset to the oldest retained record")
		latest     = fs.Bool("to-latest", false, "reset to the end of each partition")
		datetime   = fs.String("to-datetime", "", "reset to the first record at or after this RFC 3339 time, e.g. 2026-12-01T10:00:00Z")
		toOffset   = fs.String("to-offset", "", "reset the named partitions to these offsets, as partition=offset,...")
		partitions = fs.String("partitions", "", "reset only these partitions, comma-separated (not with -to-offset)")
		dryRun     = fs.Bool("dry-run", false, "print the plan, commit nothing")
		force      = fs.Bool("force", false, "remove the group's members first (for members that are gone but not yet expired)")
		timeout    = fs.Duration("timeout", time.Minute, "give up after this long")
		verbose    = fs.Bool("v", false, "log progress")
	)
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "mq-offsets: "+format+"\n", a...)
		fs.Usage()
		return exitUsage
	}
	if fs.NArg() > 0 {
		return usage("unexpected arguments %q", fs.Args())
	}
	if *brokers == "" { // not the flag's default: -h would print it twice
		*brokers = os.Getenv("KAFKA_BROKERS")
	}
	if *brokers == "" || *group == "" || *topic == "" {
		return usage("-brokers (or KAFKA_BROKERS), -group and -topic are required")
	}
	to, reset, err := target(*earliest, *latest, *datetime, *toOffset)
	if err != nil {
		return usage("%v", err)
	}
	var opts []mq.AdminOption
	if *verbose {
		l, _ := zap.NewDevelopment()
		opts = append(opts, mq.WithLogger(l))
	}
	if *partitions != "" {
		if !reset || *toOffset != "" {
			return usage("-partitions needs -to-earliest, -to-latest or -to-datetime (-to-offset names its partitions)")
		}
		ids, err := parseInts(*partitions)
		if err != nil {
			return usage("-partitions: %v", err)
		}
		opts = append(opts, mq.WithResetPartitions(ids...))
	}
	if (*dryRun || *force) && !reset {
		return usage("-dry-run and -force need a reset (-to-earliest, -to-latest, -to-datetime, -to-offset)")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	addrs := strings.Split(*brokers, ",")

	if !reset {
		offs, err := mq.GroupOffsets(ctx, addrs, *group, *topic, opts...)
		if err != nil {
			fmt.Fprintln(stderr, "mq-offsets:", err)
			return exitFailed
		}
		printOffsets(stdout, *group, *topic, offs)
		return exitOK
	}

	opts = append(opts, mq.WithResetDryRun(*dryRun), mq.WithResetForce(*force))
	plan, err := mq.ResetOffsets(ctx, addrs, *group, *topic, to, opts...)
	status := "committed"
	switch {
	case err != nil:
		status = "NOT committed"
	case *dryRun:
		status = "dry run: nothing committed"
	}
	if plan != nil {
		printPlan(stdout, *group, *topic, to, plan, status)
	}
	var active *mq.ActiveGroupError
	switch {
	case errors.As(err, &active):
		fmt.Fprintln(stderr, "mq-offsets:", err)
		return exitActive
	case errors.Is(err, mq.ErrInvalidOption):
		fmt.Fprintln(stderr, "mq-offsets:", err)
		return exitUsage
	case err != nil:
		fmt.Fprintln(stderr, "mq-offsets:", err)
		return exitFailed
	}
	return exitOK
}

// target turns the reset flags into an offset reset; reset is false when
// none was given (show offsets only).
func target(earliest, latest bool, datetime, toOffset string) (to mq.OffsetReset, reset bool, err error) {
	n := 0
	for _, set := range []bool{earliest, latest, datetime != "", toOffset != ""} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return to, false, errors.New("give at most one of -to-earliest, -to-latest, -to-datetime, -to-offset")
	case earliest:
		return mq.ResetToEarliest(), true, nil
	case latest:
		return mq.ResetToLatest(), true, nil
	case datetime != "":
		t, err := time.Parse(time.RFC3339Nano, datetime)
		if err != nil {
			return to, false, fmt.Errorf("-to-datetime: want an RFC 3339 time such as 2026-12-01T10:00:00Z: %w", err)
		}
		return mq.ResetToTime(t), true, nil
	case toOffset != "":
		offs, err := parseOffsets(toOffset)
		if err != nil {
			return to, false, fmt.Errorf("-to-offset: %w", err)
		}
		return mq.ResetToOffsets(offs), true, nil
	}
	return to, false, nil
}

// parseOffsets parses "partition=offset,..." .
func parseOffsets(s string) (map[int]int64, error) {
	out := map[int]int64{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return nil, fmt.Errorf("%q: want partition=offset", kv)
		}
		p, err := strconv.Atoi(k)
		if err != nil || p < 0 {
			return nil, fmt.Errorf("%q: bad partition", kv)
		}
		o, err := strconv.ParseInt(v, 10, 64)
		if err != nil || o < 0 {
			return nil, fmt.Errorf("%q: bad offset", kv)
		}
		if _, dup := out[p]; dup {
			return nil, fmt.Errorf("partition %d given twice", p)
		}
		out[p] = o
	}
	return out, nil
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q: not a partition number", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func printPlan(w io.Writer, group, topic string, to mq.OffsetReset, plan []mq.PartitionReset, status string) {
	fmt.Fprintf(w, "group %s, topic %s: reset to %s (%s)\n", group, topic, to, status)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PARTITION\tCURRENT\tNEW\tCHANGE\t")
	for _, p := range plan {
		cur, change := "-", "-"
		if p.Committed >= 0 {
			cur = strconv.FormatInt(p.Committed, 10)
			change = fmt.Sprintf("%+d", p.New-p.Committed)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%s\t\n", p.Partition, cur, p.New, change)
	}
	_ = tw.Flush()
}

func printOffsets(w io.Writer, group, topic string, offs []mq.GroupOffset) {
	fmt.Fprintf(w, "group %s, topic %s\n", group, topic)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "PARTITION\tCOMMITTED\tSTART\tEND\tLAG\t")
	var lag int64
	for _, o := range offs {
		cur := "-"
		if o.Committed >= 0 {
			cur = strconv.FormatInt(o.Committed, 10)
		}
		fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t\n", o.Partition, cur, o.Start, o.End, o.Lag)
		lag += o.Lag
	}
	_ = tw.Flush()
	fmt.Fprintf(w, "total lag %d\n", lag)
}
