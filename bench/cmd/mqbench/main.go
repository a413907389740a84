// Command mqbench runs the same Kafka workloads through mq, raw kafka-go,
// franz-go, and (on a real broker) the Java client's perf tools and kcat,
// and prints one comparison table.
//
//	go run ./bench/cmd/mqbench [-brokers host:port] [-runs 3] [-workloads a,b,...] [-quick]
//
// Without -brokers (or KAFKA_BROKERS) it starts an embedded kfake broker.
// Each system+workload run is a separate process (this binary re-executed
// as a worker) so that its peak RSS is its own.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mqkit/mq/mqtest"
	"github.com/twmb/franz-go/pkg/kgo"
)

func main() {
	if js, ok := workerArg(); ok {
		os.Exit(workerMain(js))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// sizes are the message counts and durations of one mode.
type sizes struct {
	a, aWarm   int64
	b, bWarm   int64
	c, cWarm   int64
	d          int64
	e1, e8     int64
	fDur       time.Duration
	g          int64
	gDur       time.Duration
	conc       int
	rate       int
	slowWait   time.Duration
	partitions int
	h          []scale       // workload h's cells
	iDur       time.Duration // i: measured window
	iDelay     time.Duration // i: how late the slow broker answers produce requests
}

var fullSizes = sizes{
	a: 200_000, aWarm: 5_000,
	b: 3_000, bWarm: 200,
	c: 60_000, cWarm: 1_000,
	d:  300_000,
	e1: 30_000, e8: 100_000,
	fDur: 10 * time.Second,
	g:    1_000_000, gDur: 15 * time.Second,
	conc: 64, rate: 1000, slowWait: time.Millisecond, partitions: 12,
	h:    fullScales,
	iDur: 10 * time.Second, iDelay: 3 * time.Second,
}

var quickSizes = sizes{
	a: 2_000, aWarm: 100,
	b: 50, bWarm: 10,
	c: 1_000, cWarm: 64,
	d:  3_000,
	e1: 500, e8: 2_000,
	fDur: 300 * time.Millisecond,
	g:    100_000, gDur: 500 * time.Millisecond,
	conc: 64, rate: 1000, slowWait: time.Millisecond, partitions: 12,
	h:    quickScales,
	iDur: time.Second, iDelay: 300 * time.Millisecond,
}

var allWorkloads = []string{"a", "b", "c", "d", "e1", "e8", "f", "g", "h12", "h120", "h1000", "i"}

var workloadTitle = map[string]string{
	"a":  "a produce 1KiB JSON",
	"b":  "b sync send x1",
	"c":  "c sync send x64",
	"d":  "d consume no-op",
	"e1": "e consume 1ms, 1 lane",
	"e8": "e consume 1ms, 8 lanes",
	"f":  "f end-to-end 1k/s",
	"g":  "g 1M backlog, slow",
	// h's cells match fullScales and quickScales.
	"h12":   "h 12 partitions",
	"h120":  "h 120 partitions",
	"h1000": "h 1,000 partitions",
	"i":     "i sync x64, 1/3 brokers slow",
}

// systemsFor lists the systems run on a workload, in table order.
func systemsFor(w string, real bool) []string {
	var s []string
	switch w {
	case "a":
		s = []string{"mq", "kafka-go", "kafka-go/batch", "franz-go"}
		if real {
			s = append(s, "java", "kcat")
		}
	case "b":
		s = []string{"mq", "kafka-go", "franz-go"}
	case "c":
		s = []string{"mq", "kafka-go", "kafka-go/batch", "franz-go"}
	case "d":
		// mq/batch100: a batch handler (batches of up to 100) beside mq's
		// per-message handler.
		s = []string{"mq", "mq/batch100", "kafka-go", "franz-go"}
		if real {
			s = append(s, "java", "kcat")
		}
	case "e1":
		// mq/batch100: the 1 ms wait once per batch call (as a
		// transaction's commit), not once per message.
		s = []string{"mq", "mq/batch100"}
	case "e8":
		s = []string{"mq"}
	case "f":
		s = []string{"mq", "kafka-go", "franz-go"}
	case "g":
		s = []string{"mq", "kafka-go", "franz-go"}
		if real {
			s = append(s, "kcat")
		}
	case "h12", "h120", "h1000":
		s = []string{"mq", "franz-go", "kafka-go"}
	case "i":
		s = []string{"mq", "franz-go"}
	}
	return s
}

type options struct {
	brokers   string
	runs      int
	workloads []string
	quick     bool
	embedded  bool
	markdown  bool
	jsonOut   string
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mqbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	var wl string
	fs.StringVar(&o.brokers, "brokers", "", "broker host:port[,host:port] (default: $KAFKA_BROKERS, else an embedded kfake broker)")
	fs.IntVar(&o.runs, "runs", 3, "runs per system and workload; figures are medians")
	fs.StringVar(&wl, "workloads", "a,b,c,d,e,f,g,h,i", "workloads to run (a-i; e runs e1 and e8, h runs h12, h120 and h1000)")
	fs.BoolVar(&o.quick, "quick", false, "tiny counts, 1 run, for CI: checks that everything runs")
	fs.BoolVar(&o.embedded, "embedded", false, "use the embedded broker even if KAFKA_BROKERS is set")
	fs.BoolVar(&o.markdown, "markdown", false, "print the table as Markdown")
	fs.StringVar(&o.jsonOut, "json", "", "also write every run's figures to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	for _, w := range strings.Split(wl, ",") {
		w = strings.TrimSpace(w)
		switch {
		case w == "":
		case w == "e":
			o.workloads = append(o.workloads, "e1", "e8")
		case w == "h":
			o.workloads = append(o.workloads, "h12", "h120", "h1000")
		case slices.Contains(allWorkloads, w):
			o.workloads = append(o.workloads, w)
		default:
			fmt.Fprintf(stderr, "mqbench: unknown workload %q (want a-i)\n", w)
			return 2
		}
	}
	if o.quick {
		o.runs = 1
	}
	if o.runs < 1 {
		fmt.Fprintln(stderr, "mqbench: -runs must be >= 1")
		return 2
	}
	if err := bench(o, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "mqbench:", err)
		return 1
	}
	return 0
}

type bencher struct {
	o       options
	sz      sizes
	cl      *mqtest.Cluster
	brokers []string
	real    bool
	java    *javaTools
	kcat    bool
	gen     *generator
	avg     float64
	dir     string
	log     io.Writer
	results map[string]map[string][]result // workload -> system -> runs
	topics  map[string]string              // prefilled topics by workload
	slow    *slowCluster                   // h: three kfake brokers, one slow
}

func bench(o options, stdout, stderr io.Writer) error {
	sz := fullSizes
	if o.quick {
		sz = quickSizes
	}
	ctx := context.Background()
	var copts []mqtest.Option
	switch {
	case o.embedded:
		copts = append(copts, mqtest.WithMode(mqtest.ModeEmbedded))
	case o.brokers != "":
		copts = append(copts, mqtest.WithMode(mqtest.ModeExternal), mqtest.WithBrokers(strings.Split(o.brokers, ",")...))
	}
	cl, err := mqtest.NewCluster(ctx, copts...)
	if err != nil {
		return err
	}
	defer cl.Close()
	b := &bencher{o: o, sz: sz, cl: cl, brokers: cl.Addrs(), real: cl.Mode() != mqtest.ModeEmbedded,
		gen: newGenerator(), log: stderr, results: map[string]map[string][]result{}, topics: map[string]string{}}
	b.avg = b.gen.avgSize()
	dir, err := os.MkdirTemp("", "mqbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	b.dir = dir
	if b.real {
		if j, err := findJava(); err == nil {
			b.java = j
		} else {
			b.logf("java perf tools unavailable: %v", err)
		}
		if _, err := exec.LookPath("kcat"); err == nil {
			b.kcat = true
		} else {
			b.logf("kcat not installed (apt-get install -y kcat): skipped")
		}
	}
	b.logf("broker %s (%s), %d run(s), workloads %s, message %.0f bytes (key+JSON value)",
		strings.Join(b.brokers, ","), cl.Mode(), o.runs, strings.Join(o.workloads, ","), b.avg)
	env := b.environment(ctx)
	loadBefore := loadAvg()
	began := time.Now()
	defer b.cleanup()
	for _, w := range o.workloads {
		if err := b.runWorkload(ctx, w); err != nil {
			return fmt.Errorf("workload %s: %w", w, err)
		}
	}
	if b.slow != nil {
		b.slow.close()
	}
	took := time.Since(began).Round(time.Second)
	b.logf("done in %v", took)
	b.printHeader(stdout)
	env.print(stdout)
	fmt.Fprintf(stdout, "%-9s %s at start, %s at end (1/5/15 min); took %v\n\n", "load:", loadBefore, loadAvg(), took)
	b.printTable(stdout)
	b.printScaling(stdout)
	b.printTargets(stdout)
	if o.jsonOut != "" {
		js, _ := json.MarshalIndent(b.jsonDump(), "", "  ")
		if err := os.WriteFile(o.jsonOut, js, 0o644); err != nil {
			return err
		}
	}
	return nil
}

func (b *bencher) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "[%s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func (b *bencher) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, t := range b.topics {
		_ = b.cl.DeleteTopic(ctx, t)
	}
}

func (b *bencher) newTopic(ctx context.Context, w string) (string, error) {
	return b.newTopicN(ctx, w, b.sz.partitions)
}

func (b *bencher) newTopicN(ctx context.Context, w string, partitions int) (string, error) {
	t := mqtest.UniqueName("mqbench-" + w)
	return t, b.cl.CreateTopic(ctx, t, partitions)
}

// prefilled returns the topic holding the backlog of a consuming workload,
// producing it on first use (not timed).
func (b *bencher) prefilled(ctx context.Context, w string) (string, int64, error) {
	key, n := w, int64(0)
	switch w {
	case "d":
		n = b.sz.d
	case "e1", "e8":
		// Twice what a run consumes: keys spread unevenly over partitions,
		// so a run that drained the whole backlog would end with only the
		// fullest partitions still busy.
		key, n = "e", 2*max(b.sz.e1, b.sz.e8)
	case "g":
		n = b.sz.g
	}
	if t, ok := b.topics[key]; ok {
		return t, n, nil
	}
	t, err := b.newTopic(ctx, key)
	if err != nil {
		return "", 0, err
	}
	b.topics[key] = t
	start := time.Now()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.brokers...), kgo.DefaultProduceTopic(t),
		kgo.ProducerBatchCompression(kgo.SnappyCompression()), kgo.MaxBufferedRecords(100_000))
	if err != nil {
		return "", 0, err
	}
	defer cl.Close()
	var failed error
	for i := int64(0); i < n; i++ {
		v, _ := json.Marshal(b.gen.event(i, time.Now().UnixNano()))
		key := b.gen.key(i)
		if os.Getenv("MQBENCH_DIAG_NIL_KEYS") != "" { // diagnostics only: no keys in backlogs
			key = nil
		}
		cl.Produce(ctx, &kgo.Record{Key: key, Value: v}, func(_ *kgo.Record, err error) {
			if err != nil && failed == nil {
				failed = err
			}
		})
	}
	if err := cl.Flush(ctx); err != nil {
		return "", 0, err
	}
	if failed != nil {
		return "", 0, failed
	}
	if err := b.checkCount(ctx, t, n); err != nil {
		return "", 0, err
	}
	b.logf("prefilled %s with %d messages in %v", t, n, time.Since(start).Round(time.Millisecond))
	return t, n, nil
}

// checkCount verifies that topic holds exactly n records.
func (b *bencher) checkCount(ctx context.Context, topic string, n int64) error {
	ends, err := b.cl.EndOffsets(ctx, topic)
	if err != nil {
		return err
	}
	var total int64
	for _, e := range ends {
		total += e
	}
	if total != n {
		return fmt.Errorf("topic %s holds %d records, want %d", topic, total, n)
	}
	return nil
}

// payloadFile writes the Java tool's payload file (values only, one per line).
func (b *bencher) payloadFile() (string, error) {
	p := filepath.Join(b.dir, "payloads.txt")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	for i := int64(0); i < 1000; i++ {
		v, _ := json.Marshal(b.gen.event(i, sampleSent))
		w.Write(v)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return p, f.Close()
}

// kcatFile writes n "key\tvalue" lines for kcat -P.
func (b *bencher) kcatFile(n int64) (string, error) {
	p := filepath.Join(b.dir, "kcat-"+strconv.FormatInt(n, 10)+".txt")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	f, err := os.Create(p)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriterSize(f, 1<<20)
	for i := int64(0); i < n; i++ {
		v, _ := json.Marshal(b.gen.event(i, sampleSent))
		w.Write(b.gen.key(i))
		w.WriteByte('\t')
		w.Write(v)
		w.WriteByte('\n')
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return p, f.Close()
}

func (b *bencher) available(sys string) bool {
	switch sys {
	case "java":
		return b.java != nil
	case "kcat":
		return b.kcat
	}
	return true
}

func (b *bencher) runWorkload(ctx context.Context, w string) error {
	systems := slices.DeleteFunc(systemsFor(w, b.real), func(s string) bool { return !b.available(s) })
	if b.results[w] == nil {
		b.results[w] = map[string][]result{}
	}
	// Rounds alternate between systems (ABCABC) so drift hits all alike.
	for r := 1; r <= b.o.runs; r++ {
		for _, sys := range systems {
			res, err := b.runOne(ctx, w, sys, r)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", sys, r, err)
			}
			b.results[w][sys] = append(b.results[w][sys], res)
			b.logf("%-22s %-14s run %d: %s", workloadTitle[w], sys, r, res.brief())
		}
	}
	return nil
}

func (r result) brief() string {
	s := fmt.Sprintf("%.0f msgs/s", r.MsgsSec)
	if !isNaN(r.P50) {
		s += fmt.Sprintf(", p50 %.2f ms, p99 %.2f ms", r.P50, r.P99)
	}
	if !isNaN(r.Allocs) {
		s += fmt.Sprintf(", %.1f allocs/msg", r.Allocs)
	}
	s += fmt.Sprintf(", RSS %.0f MiB", r.RSS)
	if r.Note != "" {
		s += " (" + r.Note + ")"
	}
	return s
}

func (b *bencher) runOne(ctx context.Context, w, sys string, run int) (result, error) {
	sz := b.sz
	s := spec{System: sys, Workload: w, Brokers: b.brokers}
	brokers := strings.Join(b.brokers, ",")
	group := mqtest.UniqueName("mqbench-" + w + "-" + strings.ReplaceAll(sys, "/", "-"))
	switch w {
	case "i":
		return b.runSlowBroker(ctx, s)
	case "a", "b", "c", "f":
		topic, err := b.newTopic(ctx, w)
		if err != nil {
			return newResult(), err
		}
		defer func() {
			dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			_ = b.cl.DeleteTopic(dctx, topic)
			cancel()
		}()
		s.Topic, s.Group = topic, group
		var res result
		switch {
		case sys == "java":
			pf, err := b.payloadFile()
			if err != nil {
				return newResult(), err
			}
			res, err = b.java.producerPerf(ctx, brokers, topic, pf, sz.a, sz.aWarm, b.avg)
			if err != nil {
				return res, err
			}
			return res, b.checkCount(ctx, topic, sz.a+sz.aWarm)
		case sys == "kcat":
			kf, err := b.kcatFile(sz.a)
			if err != nil {
				return newResult(), err
			}
			res, err = kcatProduce(ctx, brokers, topic, kf, sz.a, b.avg)
			if err != nil {
				return res, err
			}
			return res, b.checkCount(ctx, topic, sz.a)
		}
		switch w {
		case "a":
			s.N, s.Warmup = sz.a, sz.aWarm
		case "b":
			s.N, s.Warmup = sz.b, sz.bWarm
		case "c":
			s.N, s.Warmup, s.Conc = sz.c, sz.cWarm, sz.conc
		case "f":
			s.Duration, s.Rate = sz.fDur, sz.rate
		}
		res, err = runGoWorker(ctx, s, b.log)
		if err != nil {
			return res, err
		}
		if w != "f" {
			err = b.checkCount(ctx, topic, s.N+s.Warmup)
		}
		return res, err
	case "h12", "h120", "h1000":
		sc, ok := b.scaleOf(w)
		if !ok {
			return newResult(), fmt.Errorf("no cell for workload %s", w)
		}
		topic, err := b.prefillScaling(ctx, w, sc)
		if err != nil {
			return newResult(), err
		}
		s.Topic, s.Group, s.N = topic, group, sc.total()
		return runGoWorker(ctx, s, b.log)
	default: // d, e1, e8, g: consume a prefilled topic in a new group
		topic, n, err := b.prefilled(ctx, w)
		if err != nil {
			return newResult(), err
		}
		s.Topic, s.Group, s.N = topic, group, n
		switch w {
		case "e1":
			s.N, s.Wait, s.Lanes = sz.e1, sz.slowWait, 1
		case "e8":
			s.N, s.Wait, s.Lanes = sz.e8, sz.slowWait, 8
		case "g":
			s.Wait, s.Duration = sz.slowWait, sz.gDur
		}
		switch sys {
		case "java":
			return b.java.consumerPerf(ctx, brokers, topic, group, n, b.avg)
		case "kcat":
			if w == "g" {
				return kcatConsume(ctx, brokers, topic, n, sz.slowWait, sz.gDur, b.avg)
			}
			return kcatConsume(ctx, brokers, topic, n, 0, 0, b.avg)
		}
		return runGoWorker(ctx, s, b.log)
	}
}

// ----- reporting -----

// agg is the median of each figure over the runs.
func (b *bencher) agg(w, sys string) (result, bool) {
	rs := b.results[w][sys]
	if len(rs) == 0 {
		return newResult(), false
	}
	pick := func(f func(result) float64) float64 {
		var xs []float64
		for _, r := range rs {
			xs = append(xs, f(r))
		}
		return median(xs)
	}
	out := result{
		MsgsSec: pick(func(r result) float64 { return r.MsgsSec }),
		MBSec:   pick(func(r result) float64 { return r.MBSec }),
		P50:     pick(func(r result) float64 { return r.P50 }),
		P99:     pick(func(r result) float64 { return r.P99 }),
		Allocs:  pick(func(r result) float64 { return r.Allocs }),
		RSS:     pick(func(r result) float64 { return r.RSS }),
		Wait:    pick(func(r result) float64 { return r.Wait }),
		Msgs:    rs[0].Msgs,
		Secs:    pick(func(r result) float64 { return r.Secs }),

		FirstToLast: pick(func(r result) float64 { return r.FirstToLast }),
		Sockets:     pick(func(r result) float64 { return r.Sockets }),
		Goroutines:  pick(func(r result) float64 { return r.Goroutines }),
	}
	return out, true
}

// headline is the figure a workload's ratio compares.
func headline(w string) (name string, f func(result) float64) {
	switch w {
	case "b", "f":
		return "p50", func(r result) float64 { return r.P50 }
	case "i":
		return "p99", func(r result) float64 { return r.P99 }
	case "g":
		return "RSS", func(r result) float64 { return r.RSS }
	}
	return "msgs/s", func(r result) float64 { return r.MsgsSec }
}

func isNaN(f float64) bool { return math.IsNaN(f) }

func fmtF(f float64, prec int) string {
	if isNaN(f) {
		return "—"
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

func fmtRate(f float64) string {
	if isNaN(f) {
		return "—"
	}
	return strconv.FormatFloat(math.Round(f), 'f', 0, 64)
}

func (b *bencher) rows() [][]string {
	var rows [][]string
	for _, w := range b.o.workloads {
		if isScaling(w) {
			continue // its own table: printScaling
		}
		mqr, haveMQ := b.agg(w, "mq")
		hname, hf := headline(w)
		for _, sys := range systemsFor(w, b.real) {
			r, ok := b.agg(w, sys)
			if !ok {
				continue
			}
			ratio := "—"
			if haveMQ && w != "e1" && w != "e8" {
				if x, y := hf(r), hf(mqr); !isNaN(x) && !isNaN(y) && y != 0 {
					ratio = fmt.Sprintf("%.2f× %s", x/y, hname)
				}
			}
			rows = append(rows, []string{workloadTitle[w], sys, fmtRate(r.MsgsSec), fmtF(r.MBSec, 1),
				fmtF(r.P50, 2), fmtF(r.P99, 2), fmtF(r.Allocs, 1), fmtF(r.RSS, 0), ratio})
		}
	}
	return rows
}

var tableHeader = []string{"workload", "system", "msgs/s", "MB/s", "p50 ms", "p99 ms", "allocs/msg", "peak RSS MiB", "vs mq"}

func (b *bencher) printHeader(out io.Writer) {
	mode := "embedded kfake"
	if b.real {
		mode = "external broker " + strings.Join(b.brokers, ",")
	}
	fmt.Fprintf(out, "\nmqbench: %s, %d run(s) per cell (median), %d partitions, %.0f-byte messages (key + JSON value), snappy, acks=all\n\n",
		mode, b.o.runs, b.sz.partitions, b.avg)
}

func (b *bencher) printTable(out io.Writer) {
	rows := b.rows()
	if b.o.markdown {
		fmt.Fprintln(out, "| "+strings.Join(tableHeader, " | ")+" |")
		seps := make([]string, len(tableHeader))
		for i := range seps {
			seps[i] = "---"
			if i >= 2 {
				seps[i] = "---:"
			}
		}
		fmt.Fprintln(out, "|"+strings.Join(seps, "|")+"|")
		for _, r := range rows {
			fmt.Fprintln(out, "| "+strings.Join(r, " | ")+" |")
		}
		fmt.Fprintln(out)
		return
	}
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(tableHeader, "\t")+"\t")
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t")+"\t")
	}
	tw.Flush()
	fmt.Fprintln(out)
}

type target struct {
	name   string
	met    bool
	detail string
	known  bool
}

func (b *bencher) targets() []target {
	get := func(w, sys string) (result, bool) { return b.agg(w, sys) }
	var ts []target
	add := func(name string, known, met bool, detail string) {
		ts = append(ts, target{name, met, detail, known})
	}
	if mq, ok := get("a", "mq"); ok {
		fr, ok1 := get("a", "franz-go")
		kg, ok2 := get("a", "kafka-go")
		kb, ok3 := get("a", "kafka-go/batch")
		best := math.Max(kg.MsgsSec, kb.MsgsSec)
		bestName := "kafka-go"
		if kb.MsgsSec > kg.MsgsSec {
			bestName = "kafka-go/batch"
		}
		if ok1 && ok2 && ok3 {
			add("(a) producer throughput ≥ 1.0× franz-go and ≥ 1.0× best kafka-go writer", true,
				mq.MsgsSec >= fr.MsgsSec && mq.MsgsSec >= best,
				fmt.Sprintf("mq %.0f msgs/s = %.2f× franz-go (%.0f), %.2f× %s (%.0f)",
					mq.MsgsSec, mq.MsgsSec/fr.MsgsSec, fr.MsgsSec, mq.MsgsSec/best, bestName, best))
		}
	}
	if mq, ok := get("b", "mq"); ok {
		if fr, ok := get("b", "franz-go"); ok {
			add("(b) sync send p50 ≤ 2× franz-go ProduceSync and ≤ 2 ms, p99 ≤ 10 ms", true,
				mq.P50 <= 2*fr.P50 && mq.P50 <= 2 && mq.P99 <= 10,
				fmt.Sprintf("mq p50 %.2f ms = %.2f× franz-go (%.2f ms), p99 %.2f ms", mq.P50, mq.P50/fr.P50, fr.P50, mq.P99))
		}
	}
	if mq, ok := get("c", "mq"); ok {
		if fr, ok := get("c", "franz-go"); ok {
			add("(c) 64 sync senders ≥ 1.0× franz-go ProduceSync", true, mq.MsgsSec >= fr.MsgsSec,
				fmt.Sprintf("mq %.0f msgs/s = %.2f× franz-go (%.0f)", mq.MsgsSec, mq.MsgsSec/fr.MsgsSec, fr.MsgsSec))
		}
	}
	if mq, ok := get("d", "mq"); ok {
		fr, ok1 := get("d", "franz-go")
		kg, ok2 := get("d", "kafka-go")
		if ok1 && ok2 {
			add("(d) consumer ≥ 1.0× franz-go and ≥ 1.0× kafka-go group Reader", true,
				mq.MsgsSec >= fr.MsgsSec && mq.MsgsSec >= kg.MsgsSec,
				fmt.Sprintf("mq %.0f msgs/s = %.2f× franz-go (%.0f), %.2f× kafka-go (%.0f)",
					mq.MsgsSec, mq.MsgsSec/fr.MsgsSec, fr.MsgsSec, mq.MsgsSec/kg.MsgsSec, kg.MsgsSec))
		}
	}
	if e1, ok := get("e1", "mq"); ok {
		bound := float64(b.sz.partitions) * float64(time.Second/b.sz.slowWait)
		detail := fmt.Sprintf("mq %.0f msgs/s = %.0f%% of %.0f/s", e1.MsgsSec, 100*e1.MsgsSec/bound, bound)
		if e1.Wait > 0 {
			real := float64(b.sz.partitions) * 1000 / e1.Wait
			detail += fmt.Sprintf("; time.Sleep(1ms) took %.3f ms here, so the real bound is %.0f/s: %.0f%% of it", e1.Wait, real, 100*e1.MsgsSec/real)
		}
		add(fmt.Sprintf("(e) 1 ms handler, no lanes ≥ 90%% of %.0f/s", bound), true, e1.MsgsSec >= 0.9*bound, detail)
	}
	if e8, ok := get("e8", "mq"); ok {
		detail := fmt.Sprintf("mq %.0f msgs/s", e8.MsgsSec)
		if e8.Wait > 0 {
			detail += fmt.Sprintf(" (mean wait %.3f ms)", e8.Wait)
		}
		add("(e) 1 ms handler, WithLanes(8) ≥ 40k/s", true, e8.MsgsSec >= 40000, detail)
	}
	if mq, ok := get("f", "mq"); ok {
		add("(f) end-to-end p99 ≤ 25 ms at 1k/s", true, mq.P99 <= 25, fmt.Sprintf("mq p50 %.2f ms, p99 %.2f ms", mq.P50, mq.P99))
	}
	if mq, ok := get("g", "mq"); ok {
		add("(g) peak RSS ≤ 256 MiB with a 1M backlog", true, mq.RSS <= 256,
			fmt.Sprintf("mq %.0f MiB (backlog %d)", mq.RSS, b.sz.g))
	}
	if mq, ok := get("i", "mq"); ok {
		detail := fmt.Sprintf("mq p50 %.2f ms, p99 %.2f ms to the healthy brokers' partitions", mq.P50, mq.P99)
		if fr, ok := get("i", "franz-go"); ok {
			detail += fmt.Sprintf(" (franz-go p50 %.2f ms, p99 %.2f ms)", fr.P50, fr.P99)
		}
		add(fmt.Sprintf("(i) one broker %v late: the others' sync sends p99 ≤ 50 ms", b.sz.iDelay), true, mq.P99 <= 50, detail)
	}
	b.scalingTargets(add)
	return ts
}

func (b *bencher) printTargets(out io.Writer) {
	ts := b.targets()
	if len(ts) == 0 {
		return
	}
	fmt.Fprintln(out, "Targets (same run):")
	for _, t := range ts {
		v := "MISSED"
		if t.met {
			v = "met"
		}
		if b.o.quick {
			v += " (quick mode: not meaningful)"
		}
		fmt.Fprintf(out, "  %-6s %s — %s\n", v, t.name, t.detail)
	}
	fmt.Fprintln(out)
}

func (b *bencher) jsonDump() map[string]any {
	runs := map[string]map[string][]jsonResult{}
	for w, m := range b.results {
		runs[w] = map[string][]jsonResult{}
		for s, rs := range m {
			for _, r := range rs {
				runs[w][s] = append(runs[w][s], r.toJSON())
			}
		}
	}
	bi, _ := debug.ReadBuildInfo()
	deps := map[string]string{}
	if bi != nil {
		for _, d := range bi.Deps {
			deps[d.Path] = d.Version
		}
	}
	return map[string]any{"runs": runs, "go": runtime.Version(), "deps": deps, "brokers": b.brokers, "real": b.real}
}
