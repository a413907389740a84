package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc runs a command, tracking its peak RSS: VmHWM polled from
// /proc/<pid>/status every 20 ms while it runs.
type proc struct {
	cmd     *exec.Cmd
	stop    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	peak    int64
	started time.Time
}

func startProc(cmd *exec.Cmd) (*proc, error) {
	p := &proc{cmd: cmd, stop: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p.started = time.Now()
	pid := strconv.Itoa(cmd.Process.Pid)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			if v, ok := vmHWM(pid); ok {
				p.mu.Lock()
				p.peak = max(p.peak, v)
				p.mu.Unlock()
			}
			select {
			case <-t.C:
			case <-p.stop:
				return
			}
		}
	}()
	return p, nil
}

// wait waits for the process and returns its peak RSS in MiB.
func (p *proc) wait() (float64, error) {
	// The kernel's maxrss (wait4) is no use here: a child started with
	// vfork+exec inherits the parent's high-water mark.
	err := p.cmd.Wait()
	close(p.stop)
	p.wg.Wait()
	return float64(p.peak) / (1 << 20), err
}

// ----- Go systems: one worker process per run -----

// workerFlag, as the first argument followed by a JSON spec, makes the
// binary (mqbench, or its test binary) run one system+workload and exit.
const workerFlag = "-worker"

// workerArg returns the worker spec when this process is a worker.
func workerArg() (string, bool) {
	if len(os.Args) == 3 && os.Args[1] == workerFlag {
		return os.Args[2], true
	}
	return "", false
}

func runGoWorker(ctx context.Context, s spec, logw io.Writer) (result, error) {
	exe, err := os.Executable()
	if err != nil {
		return newResult(), err
	}
	js, _ := json.Marshal(s)
	cmd := exec.CommandContext(ctx, exe, workerFlag, string(js))
	var out, errb bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &errb
	p, err := startProc(cmd)
	if err != nil {
		return newResult(), err
	}
	rss, err := p.wait()
	if os.Getenv("MQBENCH_VERBOSE") != "" {
		fmt.Fprint(logw, errb.String())
	}
	if err != nil {
		return newResult(), fmt.Errorf("%s/%s worker: %v: %s", s.System, s.Workload, err, tail(errb.String()))
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if js, ok := strings.CutPrefix(line, "MQBENCH_RESULT "); ok {
			var jr jsonResult
			if err := json.Unmarshal([]byte(js), &jr); err != nil {
				return newResult(), err
			}
			r := jr.toResult()
			if isNaN(r.RSS) || rss > r.RSS { // the worker also reads its own VmHWM at the end
				r.RSS = rss
			}
			return r, nil
		}
	}
	return newResult(), fmt.Errorf("%s/%s worker printed no result: %s", s.System, s.Workload, tail(errb.String()))
}

// workerMain is the entry point of a worker process.
func workerMain(js string) int {
	var s spec
	if err := json.Unmarshal([]byte(js), &s); err != nil {
		fmt.Fprintln(os.Stderr, "mqbench worker:", err)
		return 2
	}
	r, err := runWorker(s)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mqbench worker %s/%s: %v\n", s.System, s.Workload, err)
		return 1
	}
	b, _ := json.Marshal(r.toJSON())
	fmt.Printf("MQBENCH_RESULT %s\n", b)
	return 0
}

func tail(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > 2000 {
		s = "…" + s[len(s)-2000:]
	}
	return s
}

// ----- Java perf tools -----

type javaTools struct {
	runClass string // scripts/kafka/kafka-run-class.sh
}

func findJava() (*javaTools, error) {
	if _, err := exec.LookPath("java"); err != nil {
		return nil, err
	}
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		p := filepath.Join(dir, "scripts", "kafka", "kafka-run-class.sh")
		if _, err := os.Stat(p); err == nil {
			return &javaTools{runClass: p}, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, fmt.Errorf("scripts/kafka/kafka-run-class.sh not found above the working directory")
		}
		dir = parent
	}
}

func (j *javaTools) command(ctx context.Context, class string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, j.runClass, append([]string{class}, args...)...)
	cmd.Env = append(os.Environ(), "KAFKA_PERF=1")
	return cmd
}

func (j *javaTools) version(ctx context.Context) string {
	cmd := j.command(ctx, "org.apache.kafka.tools.ConsumerPerformance", "--version")
	out, _ := cmd.CombinedOutput()
	if m := regexp.MustCompile(`\d+\.\d+\.\d+`).Find(out); m != nil {
		return string(m)
	}
	return "?"
}

var (
	reProdPerf = regexp.MustCompile(`(\d+) records sent, ([\d.]+) records/sec \(([\d.]+) MB/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th`)
)

// producerPerf runs ProducerPerformance: n records (after warmup ones) from
// the payload file, keys 0..999, snappy, acks=all.
func (j *javaTools) producerPerf(ctx context.Context, brokers, topic, payloadFile string, n, warmup int64, avg float64) (result, error) {
	res := newResult()
	cmd := j.command(ctx, "org.apache.kafka.tools.ProducerPerformance",
		"--bootstrap-server", brokers, "--topic", topic,
		"--num-records", strconv.FormatInt(n+warmup, 10), "--warmup-records", strconv.FormatInt(warmup, 10),
		"--throughput", "-1", "--payload-file", payloadFile,
		"--key-distribution", "range", "--record-key-range", strconv.Itoa(numKeys),
		"--reporting-interval", "60000",
		"--command-property", "acks=all", "compression.type=snappy", "linger.ms=10", "batch.size=1048576")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	p, err := startProc(cmd)
	if err != nil {
		return res, err
	}
	rss, err := p.wait()
	if err != nil {
		return res, fmt.Errorf("ProducerPerformance: %v: %s %s", err, tail(out.String()), tail(errb.String()))
	}
	// With warm-up records the last summary line is the steady state.
	ms := reProdPerf.FindAllStringSubmatch(out.String(), -1)
	if len(ms) == 0 {
		return res, fmt.Errorf("ProducerPerformance: no summary in %q", tail(out.String()))
	}
	m := ms[len(ms)-1]
	res.Msgs, _ = strconv.ParseInt(m[1], 10, 64)
	res.MsgsSec, _ = strconv.ParseFloat(m[2], 64)
	res.MBSec = res.MsgsSec * avg / (1 << 20)
	res.Secs = float64(res.Msgs) / res.MsgsSec
	res.RSS = rss
	return res, nil
}

// consumerPerf runs ConsumerPerformance for n records in a new group.
func (j *javaTools) consumerPerf(ctx context.Context, brokers, topic, group string, n int64, avg float64) (result, error) {
	res := newResult()
	cmd := j.command(ctx, "org.apache.kafka.tools.ConsumerPerformance",
		"--bootstrap-server", brokers, "--topic", topic, "--group", group,
		"--num-records", strconv.FormatInt(n, 10), "--timeout", "30000")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	p, err := startProc(cmd)
	if err != nil {
		return res, err
	}
	rss, err := p.wait()
	if err != nil {
		return res, fmt.Errorf("ConsumerPerformance: %v: %s %s", err, tail(out.String()), tail(errb.String()))
	}
	// Header line then values line, comma separated.
	var header []string
	for _, line := range strings.Split(out.String(), "\n") {
		fs := strings.Split(line, ",")
		for i := range fs {
			fs[i] = strings.TrimSpace(fs[i])
		}
		if len(fs) > 5 && fs[0] == "start.time" {
			header = fs
			continue
		}
		if header != nil && len(fs) == len(header) {
			get := func(name string) float64 {
				for i, h := range header {
					if h == name {
						v, _ := strconv.ParseFloat(fs[i], 64)
						return v
					}
				}
				return nan()
			}
			// fetch.* excludes the group join, as the Go systems' clocks do.
			res.Msgs = int64(get("data.consumed.in.nMsg"))
			res.MsgsSec = get("fetch.nMsg.sec")
			res.MBSec = res.MsgsSec * avg / (1 << 20)
			res.Secs = get("fetch.time.ms") / 1000
			res.RSS = rss
			if res.Msgs < n {
				return res, fmt.Errorf("ConsumerPerformance consumed %d of %d", res.Msgs, n)
			}
			return res, nil
		}
	}
	return res, fmt.Errorf("ConsumerPerformance: no stats in %q", tail(out.String()))
}

// ----- kcat -----

// kcatProduce sends the file's "key\tvalue" lines with snappy, acks=all; the
// clock is the process's wall time.
func kcatProduce(ctx context.Context, brokers, topic, file string, n int64, avg float64) (result, error) {
	res := newResult()
	f, err := os.Open(file)
	if err != nil {
		return res, err
	}
	defer f.Close()
	cmd := exec.CommandContext(ctx, "kcat", "-P", "-b", brokers, "-t", topic, "-K", "\t", "-z", "snappy",
		"-X", "acks=all", "-X", "linger.ms=10", "-X", "batch.size=1000000")
	cmd.Stdin = f
	var errb bytes.Buffer
	cmd.Stderr = &errb
	start := time.Now()
	p, err := startProc(cmd)
	if err != nil {
		return res, err
	}
	rss, err := p.wait()
	elapsed := time.Since(start)
	if err != nil || strings.Contains(errb.String(), "ERROR") || strings.Contains(errb.String(), "Failed") {
		return res, fmt.Errorf("kcat -P: %v: %s", err, tail(errb.String()))
	}
	res.Msgs, res.Secs = n, elapsed.Seconds()
	res.MsgsSec = float64(n) / elapsed.Seconds()
	res.MBSec = res.MsgsSec * avg / (1 << 20)
	res.RSS = rss
	return res, nil
}

// kcatConsume reads the topic from the beginning (no group, no commits). With
// slow > 0 it reads one message per slow for dur, then stops kcat; otherwise it
// reads to the end. The clock starts at the first message.
func kcatConsume(ctx context.Context, brokers, topic string, want int64, slow, dur time.Duration, avg float64) (result, error) {
	res := newResult()
	args := []string{"-C", "-b", brokers, "-t", topic, "-o", "beginning", "-q", "-f", `%o\n`}
	if slow == 0 {
		args = append(args, "-e")
	}
	cmd := exec.CommandContext(ctx, "kcat", args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return res, err
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	p, err := startProc(cmd)
	if err != nil {
		return res, err
	}
	br := bufio.NewReaderSize(stdout, 64<<10)
	var n int64
	var start time.Time
	var stopAt time.Time
	for {
		_, err := br.ReadSlice('\n')
		if err != nil {
			break
		}
		n++
		if n == 1 {
			start = time.Now()
			stopAt = start.Add(dur)
		}
		if slow > 0 {
			time.Sleep(slow)
			if time.Now().After(stopAt) {
				break
			}
		}
	}
	elapsed := time.Since(start)
	if slow > 0 {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_, _ = io.Copy(io.Discard, stdout)
	}
	rss, werr := p.wait()
	if slow == 0 && werr != nil {
		return res, fmt.Errorf("kcat -C: %v: %s", werr, tail(errb.String()))
	}
	if slow == 0 && n < want {
		return res, fmt.Errorf("kcat -C read %d of %d: %s", n, want, tail(errb.String()))
	}
	res.Msgs, res.Secs = n, elapsed.Seconds()
	res.MsgsSec = float64(n) / elapsed.Seconds()
	res.MBSec = res.MsgsSec * avg / (1 << 20)
	res.RSS = rss
	return res, nil
}

func kcatVersion() string {
	out, err := exec.Command("kcat", "-V").CombinedOutput()
	if err != nil {
		return "not installed"
	}
	s := string(out)
	v := "?"
	if m := regexp.MustCompile(`kcat - .*?version ([\w.\-]+)`).FindStringSubmatch(s); m != nil {
		v = m[1]
	} else if m := regexp.MustCompile(`Version ([\w.\-]+)`).FindStringSubmatch(s); m != nil {
		v = m[1]
	}
	if m := regexp.MustCompile(`librdkafka ([\d.]+)`).FindStringSubmatch(s); m != nil {
		v += " (librdkafka " + m[1] + ")"
	}
	return v
}
