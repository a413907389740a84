package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"runtime/trace"
	"strings"
)

// startProfiles writes CPU and allocation profiles of a worker to the
// directory MQBENCH_PROFILE_DIR names, when it is set and MQBENCH_PROFILE
// (comma-separated system/workload pairs, e.g. "mq/a,franz-go/a") selects the
// run or is "all".
func startProfiles(s spec) func() {
	dir := os.Getenv("MQBENCH_PROFILE_DIR")
	if dir == "" {
		return nil
	}
	id := s.System + "/" + s.Workload
	sel := os.Getenv("MQBENCH_PROFILE")
	if sel != "all" && !strings.Contains(","+sel+",", ","+id+",") {
		return nil
	}
	base := filepath.Join(dir, strings.ReplaceAll(s.System, "/", "-")+"-"+s.Workload)
	cpu, err := os.Create(base + ".cpu.pprof")
	if err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return nil
	}
	if err := pprof.StartCPUProfile(cpu); err != nil {
		fmt.Fprintln(os.Stderr, "profile:", err)
		return nil
	}
	var tf *os.File
	if os.Getenv("MQBENCH_TRACE") != "" {
		if tf, err = os.Create(base + ".trace"); err == nil {
			_ = trace.Start(tf)
		}
	}
	return func() {
		if tf != nil {
			trace.Stop()
			tf.Close()
		}
		pprof.StopCPUProfile()
		cpu.Close()
		if f, err := os.Create(base + ".alloc.pprof"); err == nil {
			_ = pprof.Lookup("allocs").WriteTo(f, 0)
			f.Close()
		}
	}
}
