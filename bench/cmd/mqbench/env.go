package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// environment describes the machine and versions, for the report.
type environment struct {
	lines []string
}

func (b *bencher) environment(ctx context.Context) environment {
	var e environment
	add := func(k, v string) { e.lines = append(e.lines, fmt.Sprintf("%-9s %s", k+":", v)) }
	add("date", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	cpu := "?"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := "?"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "MemTotal:"); ok {
				var kb int64
				fmt.Sscan(strings.TrimSpace(v), &kb)
				mem = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
			}
		}
	}
	add("machine", fmt.Sprintf("%d CPUs (%s), %s RAM, %s/%s", runtime.NumCPU(), cpu, mem, runtime.GOOS, runtime.GOARCH))
	add("go", runtime.Version())
	if out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output(); err == nil {
		rev := strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			rev += " + uncommitted changes in " + strings.Join(strings.Fields(strings.NewReplacer(" M ", " ", "M ", " ", "MM ", " ").Replace(string(st))), " ")
		}
		add("mq", "git "+rev)
	}
	dep := func(path string) string {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, d := range bi.Deps {
				if d.Path == path {
					return d.Version
				}
			}
		}
		return "?"
	}
	add("kafka-go", dep("github.com/segmentio/kafka-go"))
	add("franz-go", dep("github.com/twmb/franz-go"))
	if b.real {
		if b.java != nil {
			add("kafka", b.java.version(ctx)+" (client tools; broker at "+strings.Join(b.brokers, ",")+")")
			if out, err := exec.Command("java", "-version").CombinedOutput(); err == nil {
				add("java", strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0])
			}
		}
		if b.kcat {
			add("kcat", kcatVersion())
		}
	} else {
		add("broker", "embedded kfake (franz-go "+dep("github.com/twmb/franz-go/pkg/kfake")+") in the orchestrating process")
	}
	return e
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func (e environment) print(out io.Writer) {
	for _, l := range e.lines {
		fmt.Fprintln(out, l)
	}
}
