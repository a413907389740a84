// Command mqchaos proves, with figures, that github.com/mqkit/mq delivers at
// least once with no silent loss under faults: consumer crashes and graceful
// stops, broker restarts, rebalance storms, protocol faults, poison storms
// and an overloaded asynchronous producer.
//
//	go run ./chaos/cmd/mqchaos            # short mode (CI: a few minutes)
//	go run ./chaos/cmd/mqchaos -long      # the full sizes
//	go run ./chaos/cmd/mqchaos -scenarios 1,2 -long
//
// Producers and consumers run as separate processes (this binary, "worker"
// subcommand). See chaos/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "worker" {
		workerMain(os.Args[2:])
		return
	}
	os.Exit(orchestrate())
}

type env struct {
	long          bool
	seed          uint64
	dir           string
	verbose       bool
	brokers       string // "embedded", "jvm" or host:port list
	lanes         int    // WithLanes for scenarios 1 and 2
	groupProtocol string // WithGroupProtocol of every consumer ("": mq's default)

	handlerDelay time.Duration // handler sleep for scenarios 1 and 2
	procs        *procs
	jvm          *jvmBroker
	cluster      *jvmCluster

	// Limits on what the producer writes twice or out of order (cluster
	// scenarios); -1: reported, not a requirement. kafka-go has no
	// idempotent producer: set them to 0 once mq's is the default.
	maxProducerDups, maxLogInversions int

	jvmOnce  sync.Once
	jvmReady chan struct{}
	jvmErr   error
	jvmTook  time.Duration

	clusterOnce  sync.Once
	clusterReady chan struct{}
	clusterErr   error

	start time.Time
	logMu sync.Mutex
}

func (e *env) logf(format string, args ...any) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	fmt.Fprintf(os.Stderr, "%7.1fs  %s\n", time.Since(e.start).Seconds(), fmt.Sprintf(format, args...))
}

// startJVM starts the JVM broker once, in the background.
func (e *env) startJVM(ctx context.Context) {
	e.jvmOnce.Do(func() {
		go func() {
			defer close(e.jvmReady)
			if why := e.jvm.available(); why != "" {
				e.jvmErr = errors.New(why)
				return
			}
			e.logf("jvm: starting broker %q on %s (state %s)", e.jvm.name, e.jvm.addr(), e.jvm.stateDir())
			if err := e.jvm.purge(ctx); err != nil {
				e.logf("jvm: purging a stale instance: %v", err)
			}
			e.jvmTook, e.jvmErr = e.jvm.start(ctx)
			if e.jvmErr == nil {
				e.logf("jvm: broker ready in %v (%s)", e.jvmTook.Round(time.Millisecond), e.jvm.version)
			} else {
				e.logf("jvm: broker failed to start: %v", e.jvmErr)
			}
		}()
	})
}

func (e *env) waitJVM(ctx context.Context) error {
	e.startJVM(ctx)
	select {
	case <-e.jvmReady:
		return e.jvmErr
	case <-ctx.Done():
		return ctx.Err()
	}
}

// streamBroker is the broker of the scenarios that need no fault hooks.
func (e *env) streamBroker(ctx context.Context) (*broker, error) {
	switch e.brokers {
	case "", "embedded", "kfake":
		return newKfakeBroker(ctx)
	case "jvm":
		if err := e.waitJVM(ctx); err != nil {
			return nil, fmt.Errorf("jvm broker: %w", err)
		}
		return newExternalBroker(ctx, "jvm", e.jvm.version, []string{e.jvm.addr()})
	default:
		addrs := strings.Split(e.brokers, ",")
		return newExternalBroker(ctx, "external", "external "+e.brokers, addrs)
	}
}

type scenarioDef struct {
	id    int
	name  string
	title string
	needs string // "jvm": the JVM broker; "cluster": the three-node cluster
	run   func(s *sc)
}

var scenarioDefs = []scenarioDef{
	{1, "crash", "consumer SIGKILL + restart", "", runCrash},
	{2, "graceful", "consumer SIGTERM + restart", "", runGraceful},
	{3, "broker-restart", "broker stop/crash + restart", "jvm", runBrokerRestart},
	{4, "rebalance-storm", "3 consumers join/leave/crash", "", runRebalanceStorm},
	{5, "protocol-faults", "kfake: NLFP, NOT_COORDINATOR, LOAD_IN_PROGRESS, timeouts, commit errors", "", runProtocolFaults},
	{6, "poison-storm", "poison + panics, DeadLetterRecoverer", "", runPoisonStorm},
	{7, "async-pressure", "async producer: slow / black-holed / down broker", "", runAsyncPressure},
	{8, "cluster-kill", "3-node cluster: SIGKILL the top partition leader, restart", "cluster", runClusterKill},
	{9, "cluster-rolling", "3-node cluster: rolling restart (SIGTERM, controlled shutdown)", "cluster", runClusterRolling},
	{10, "cluster-reassign", "3-node cluster: partition reassignment + preferred-leader election", "cluster", runClusterReassign},
	{11, "cluster-pause", "3-node cluster: top partition leader SIGSTOPped 20s", "cluster", runClusterPause},
	{12, "cluster-coordinator", "3-node cluster: SIGKILL the group coordinator while committing", "cluster", runClusterCoordinator},
}

// Scenario groups for -scenarios: "single" (the default) runs on one broker,
// "cluster" on the three-node cluster, "all" is both.
func scenarioGroup(name string) ([]scenarioDef, bool) {
	var out []scenarioDef
	for _, d := range scenarioDefs {
		switch name {
		case "all":
		case "single":
			if d.needs == "cluster" {
				continue
			}
		case "cluster":
			if d.needs != "cluster" {
				continue
			}
		default:
			return nil, false
		}
		out = append(out, d)
	}
	return out, true
}

func parseScenarios(s string) ([]scenarioDef, error) {
	if s == "" {
		s = "single"
	}
	var out []scenarioDef
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		group, isGroup := scenarioGroup(f)
		found := false
		for _, d := range scenarioDefs {
			if (isGroup && slices.ContainsFunc(group, func(x scenarioDef) bool { return x.id == d.id })) || f == strconv.Itoa(d.id) || f == d.name {
				if !slices.ContainsFunc(out, func(x scenarioDef) bool { return x.id == d.id }) {
					out = append(out, d)
				}
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("unknown scenario %q", f)
		}
	}
	slices.SortFunc(out, func(a, b scenarioDef) int { return a.id - b.id })
	return out, nil
}

func orchestrate() (code int) {
	short := flag.Bool("short", false, "short mode (the default): every scenario, sized for CI (a few minutes in all)")
	long := flag.Bool("long", false, "long mode: the full sizes (100k messages, 10 crash rounds, 20 stop rounds...)")
	scen := flag.String("scenarios", "single", `comma-separated scenario numbers, names or groups ("single": 1-7, "cluster": 8-12, "all"): `+scenarioNames())
	brokers := flag.String("brokers", "embedded", `broker for scenarios 1, 2, 4, 6: "embedded" (kfake in this process), "jvm" (the scripts/kafka broker, instance "chaos"), or host:port[,host:port] of a running cluster. Scenario 3 always uses the JVM broker, 5 and 7 always kfake`)
	dir := flag.String("dir", "", "directory for the run's files (default: a new directory under $TMPDIR)")
	seed := flag.Uint64("seed", 0, "random seed (default: time-based; printed)")
	repo := flag.String("repo", "", "repository root holding scripts/kafka (default: found from the working directory)")
	jvmName := flag.String("jvm-name", "chaos", "scripts/kafka name of the single JVM broker (its state: .cache/kafka/run/<name>)")
	jvmPort := flag.Int("jvm-port", 29092, "JVM broker port (its controller uses the next one); keep both below the ephemeral port range (32768-60999 on Linux), where client connections can take them")
	clusterPort := flag.Int("cluster-port", 29200, "first port of the three-node cluster (scenarios 8-12): brokers on it and the next two, controllers on the three after")
	clusterName := flag.String("cluster-name", "clchaos", "scripts/kafka/cluster.sh name of the three-node cluster (its state: .cache/kafka/run/<name>*)")
	maxProducerDups := flag.Int("max-producer-dups", 0, "cluster scenarios: fail when the producer wrote more messages twice than this (the producer is idempotent: 0; -1: report only)")
	maxLogInversions := flag.Int("max-log-inversions", 0, "cluster scenarios: fail when the producer wrote more per-key inversions than this (the producer is idempotent: 0; -1: report only)")
	verbose := flag.Bool("v", false, "workers log at info level")
	lanes := flag.Int("lanes", 1, "WithLanes(n) for the consumers of scenarios 1 and 2")
	groupProtocol := flag.String("group-protocol", "", "WithGroupProtocol of every consumer: range, roundrobin or cooperative-sticky (default: mq's default, range then cooperative-sticky)")
	handlerDelay := flag.Duration("handler-delay", 0, "time each handler call of scenarios 1 and 2 sleeps (an I/O-bound handler, the kind lanes are for)")
	flag.Parse()
	if *short && *long {
		fmt.Fprintln(os.Stderr, "mqchaos: -short and -long are exclusive")
		return 2
	}
	defs, err := parseScenarios(*scen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqchaos:", err)
		return 2
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	if *repo == "" {
		*repo = findRepo()
	}
	if *dir == "" {
		*dir, err = os.MkdirTemp("", "mqchaos-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "mqchaos:", err)
			return 2
		}
	} else if err := os.MkdirAll(*dir, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "mqchaos:", err)
		return 2
	} else if entries, err := os.ReadDir(*dir); err != nil || len(entries) > 0 {
		// The checker reads every file of the run directory: a previous
		// run's files would count as this run's messages.
		fmt.Fprintf(os.Stderr, "mqchaos: -dir %s must be empty (or omit -dir for a new directory)\n", *dir)
		return 2
	}
	ps, err := newProcs()
	if err != nil {
		fmt.Fprintln(os.Stderr, "mqchaos:", err)
		return 2
	}
	e := &env{long: *long, seed: *seed, dir: *dir, verbose: *verbose, brokers: *brokers, procs: ps, lanes: *lanes, handlerDelay: *handlerDelay, groupProtocol: *groupProtocol,
		jvm:             &jvmBroker{repo: *repo, name: *jvmName, port: *jvmPort, cport: *jvmPort + 1},
		cluster:         &jvmCluster{repo: *repo, name: *clusterName, port: *clusterPort},
		maxProducerDups: *maxProducerDups, maxLogInversions: *maxLogInversions,
		jvmReady: make(chan struct{}), clusterReady: make(chan struct{}), start: time.Now()}
	e.jvm.logf = e.logf

	modeName := "short"
	budget := 6 * time.Minute
	if e.long {
		modeName = "long"
		budget = 90 * time.Minute
	}
	if slices.ContainsFunc(defs, func(d scenarioDef) bool { return d.needs == "cluster" }) {
		budget += 15 * time.Minute
		if e.long {
			budget += 75 * time.Minute
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	// Whatever happens, no worker and no broker of ours survives us.
	jvmUsed, clusterUsed := false, false
	cleanup := func() {
		ps.killAll()
		if clusterUsed {
			cctx, ccancel := context.WithTimeout(context.Background(), 150*time.Second)
			defer ccancel()
			e.logf("cluster: stopping and purging %q (its logs: %s)", e.cluster.name, filepath.Join(e.dir, "cluster-n*-kafka.log"))
			e.cluster.saveLogs(e.dir)
			if err := e.cluster.purge(cctx); err != nil {
				e.logf("cluster: stop failed: %v", err)
			}
		}
		if jvmUsed {
			cctx, ccancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer ccancel()
			e.logf("jvm: stopping and purging broker %q (its log: %s)", e.jvm.name, filepath.Join(e.dir, "jvm-kafka.log"))
			e.jvm.saveLog(filepath.Join(e.dir, "jvm-kafka.log"))
			if err := e.jvm.purge(cctx); err != nil {
				e.logf("jvm: stop failed: %v", err)
			}
		}
	}
	defer func() {
		if r := recover(); r != nil {
			cleanup()
			panic(r)
		}
	}()

	e.logf("mqchaos %s mode, scenarios %s, seed %d, files in %s", modeName, *scen, e.seed, e.dir)
	for _, d := range defs {
		switch {
		case d.needs == "cluster":
			clusterUsed = true
			e.startCluster(ctx)
		case d.needs == "jvm" || (e.brokers == "jvm" && d.id != 5 && d.id != 7):
			jvmUsed = true
			e.startJVM(ctx)
		}
	}

	var results []*result
	for _, d := range defs {
		if ctx.Err() != nil {
			break
		}
		results = append(results, runScenario(ctx, e, d))
	}
	cleanup()
	if ctx.Err() != nil {
		e.logf("stopped: %v", context.Cause(ctx))
	}

	var versions []string
	for _, r := range results {
		if r.brokerVersion != "" && !slices.Contains(versions, r.brokerVersion) {
			versions = append(versions, r.brokerVersion)
		}
	}
	explicit := *scen != "all" && *scen != "" && *scen != "single"
	md, failed := renderReport(results, reportMeta{mode: modeName, seed: e.seed, versions: versions,
		took: time.Since(e.start), cmdline: strings.Join(os.Args[1:], " "), explicit: explicit})
	fmt.Println(md)
	_ = os.WriteFile(filepath.Join(e.dir, "report.md"), []byte(md+"\n"), 0o644)
	e.logf("report written to %s", filepath.Join(e.dir, "report.md"))
	if ctx.Err() != nil && len(results) < len(defs) {
		return 1
	}
	if failed {
		return 1
	}
	return 0
}

func scenarioNames() string {
	var s []string
	for _, d := range scenarioDefs {
		s = append(s, fmt.Sprintf("%d=%s", d.id, d.name))
	}
	return strings.Join(s, ", ")
}

func findRepo() string {
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "scripts", "kafka", "start.sh")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}

// ---------------------------------------------------------------- one scenario

type figure struct {
	name, value string
}

type result struct {
	id            int
	name, title   string
	broker        string
	brokerVersion string
	rep           *reportFigures
	figures       []figure
	problems      []string
	notes         []string
	examples      []string
	skipped       string
	took          time.Duration
}

// reportFigures is the common part of the table.
type reportFigures struct {
	produced, acked, consumedUnique, lost, dup, order int
}

// sc is the state of one running scenario.
type sc struct {
	e     *env
	def   scenarioDef
	ctx   context.Context
	dir   string
	t0    time.Time
	res   *result
	rng   *rand.Rand
	end   time.Time // worker deadline
	count map[string]int
}

func (s *sc) logf(format string, args ...any) {
	s.e.logf("[%d %-15s %5.1fs] %s", s.def.id, s.def.name, time.Since(s.t0).Seconds(), fmt.Sprintf(format, args...))
}

func (s *sc) fig(name string, format string, args ...any) {
	s.res.figures = append(s.res.figures, figure{name, fmt.Sprintf(format, args...)})
}

// require records a violated requirement when ok is false.
func (s *sc) require(ok bool, format string, args ...any) {
	if !ok {
		msg := fmt.Sprintf(format, args...)
		s.res.problems = append(s.res.problems, msg)
		s.logf("REQUIREMENT VIOLATED: %s", msg)
	}
}

func (s *sc) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.res.notes = append(s.res.notes, msg)
	s.logf("note: %s", msg)
}

// fail aborts the scenario with a problem.
type scenarioAbort struct{ msg string }

func (s *sc) fatalf(format string, args ...any) {
	panic(scenarioAbort{fmt.Sprintf(format, args...)})
}

func (s *sc) sleep(d time.Duration) {
	select {
	case <-s.ctx.Done():
		s.fatalf("interrupted: %v", context.Cause(s.ctx))
	case <-time.After(d):
	}
}

// between returns a random duration in [a, b).
func (s *sc) between(a, b time.Duration) time.Duration {
	return a + time.Duration(s.rng.Int64N(int64(b-a)+1))
}

func (s *sc) size(short, long int) int {
	if s.e.long {
		return long
	}
	return short
}

func (s *sc) dur(short, long time.Duration) time.Duration {
	if s.e.long {
		return long
	}
	return short
}

func (s *sc) uniqueName(what string) string {
	return fmt.Sprintf("chaos-%d-%s-%s-%x", s.def.id, s.def.name, what, s.rng.Uint32())
}

// worker starts a worker process with the scenario's defaults filled in.
func (s *sc) worker(cfg WorkerConfig) *proc {
	p, err := s.tryWorker(cfg)
	if err != nil {
		s.fatalf("%v", err)
	}
	return p
}

// tryWorker is worker for goroutines other than the scenario's own: it
// returns errors instead of aborting (a panic there would take the whole
// orchestrator down without its cleanup).
func (s *sc) tryWorker(cfg WorkerConfig) (*proc, error) {
	if s.ctx.Err() != nil {
		return nil, context.Cause(s.ctx)
	}
	if s.count == nil {
		s.count = map[string]int{}
	}
	if cfg.Name == "" {
		s.count[cfg.Role]++
		cfg.Name = fmt.Sprintf("%s-%d", cfg.Role, s.count[cfg.Role])
	}
	cfg.Out = filepath.Join(s.dir, cfg.Name+".log")
	cfg.Summary = filepath.Join(s.dir, cfg.Name+".summary.json")
	cfg.Deadline = s.end
	cfg.Verbose = s.e.verbose
	if cfg.Seed == 0 {
		cfg.Seed = s.rng.Uint64()
	}
	return s.e.procs.start(cfg, s.dir)
}

func runScenario(ctx context.Context, e *env, d scenarioDef) (res *result) {
	res = &result{id: d.id, name: d.name, title: d.title}
	budget := 150 * time.Second
	if d.needs == "cluster" {
		budget = 300 * time.Second
	}
	if e.long {
		budget = 20 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()
	s := &sc{e: e, def: d, ctx: ctx, dir: filepath.Join(e.dir, fmt.Sprintf("%d-%s", d.id, d.name)),
		t0: time.Now(), res: res, rng: rand.New(rand.NewPCG(e.seed, uint64(d.id))), end: time.Now().Add(budget)}
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		res.problems = append(res.problems, err.Error())
		return res
	}
	s.logf("start: %s (files in %s)", d.title, s.dir)
	defer func() {
		if r := recover(); r != nil {
			a, ok := r.(scenarioAbort)
			if !ok {
				panic(r)
			}
			if strings.HasPrefix(a.msg, "SKIP: ") {
				res.skipped = strings.TrimPrefix(a.msg, "SKIP: ")
				s.logf("skipped: %s", res.skipped)
			} else {
				res.problems = append(res.problems, "aborted: "+a.msg)
				s.logf("ABORTED: %s", a.msg)
			}
		}
		e.procs.killAll() // nothing of this scenario outlives it
		res.took = time.Since(s.t0)
		status := "PASS"
		switch {
		case res.skipped != "":
			status = "SKIPPED"
		case len(res.problems) > 0:
			status = "FAIL"
		}
		s.logf("%s in %v", status, res.took.Round(100*time.Millisecond))
	}()
	d.run(s)
	return res
}

func goInfo() string {
	return fmt.Sprintf("%s %s/%s, %d CPUs", runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.NumCPU())
}
