package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"
)

// procs starts worker processes (this same binary, "worker" subcommand) and
// makes sure none outlives the orchestrator: each child is in its own
// process group (a terminal's Ctrl-C reaches only the orchestrator, which
// then stops them), gets SIGKILL if the orchestrator dies (Pdeathsig), and
// killAll runs on every exit path.
type procs struct {
	exe string

	mu    sync.Mutex
	live  map[*proc]struct{}
	count int
}

type proc struct {
	Name    string
	Cfg     WorkerConfig
	LogPath string
	Started time.Time

	cmd   *exec.Cmd
	done  chan struct{}
	ready chan struct{} // closed once the worker handles SIGTERM (or ended)

	mu       sync.Mutex
	ended    time.Time
	exitCode int
	signaled string // signal that ended it, if any
	sent     []string
}

func newProcs() (*procs, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	return &procs{exe: exe, live: make(map[*proc]struct{})}, nil
}

func (ps *procs) start(cfg WorkerConfig, dir string) (*proc, error) {
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, cfg.Name+".stderr")
	lf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer lf.Close()
	cmd := exec.Command(ps.exe, "worker", "-role", cfg.Role, "-cfg", string(b))
	cmd.Stdout = lf
	cmd.Stderr = lf
	cmd.Env = append(os.Environ(), "GOMAXPROCS=2")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	// fd 3 in the worker: it writes one byte once its signal handlers are
	// installed (see announceReady), so that a SIGTERM sent right after the
	// start is a graceful stop, not the default action that kills.
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.Env = append(cmd.Env, readyEnv+"=3")
	p := &proc{Name: cfg.Name, Cfg: cfg, LogPath: logPath, cmd: cmd, done: make(chan struct{}),
		ready: make(chan struct{}), exitCode: -1}
	ps.mu.Lock()
	defer ps.mu.Unlock()
	err = cmd.Start()
	readyW.Close() // the child has its copy
	if err != nil {
		readyR.Close()
		return nil, fmt.Errorf("starting %s: %w", cfg.Name, err)
	}
	go func() {
		var b [1]byte
		_, _ = readyR.Read(b[:]) // a byte, or EOF when the worker ends
		readyR.Close()
		close(p.ready)
	}()
	p.Started = time.Now()
	ps.live[p] = struct{}{}
	ps.count++
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.ended = time.Now()
		p.exitCode = cmd.ProcessState.ExitCode()
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			p.signaled = ws.Signal().String()
		}
		_ = err
		p.mu.Unlock()
		ps.mu.Lock()
		delete(ps.live, p)
		ps.mu.Unlock()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) Pid() int { return p.cmd.Process.Pid }

// signal sends sig to the process (and its group, so that nothing it
// started survives). SIGTERM and SIGINT wait until the worker handles them.
func (p *proc) signal(sig syscall.Signal) {
	if sig == syscall.SIGTERM || sig == syscall.SIGINT {
		select {
		case <-p.ready:
		case <-p.done:
		case <-time.After(30 * time.Second):
		}
	}
	p.mu.Lock()
	p.sent = append(p.sent, sig.String())
	p.mu.Unlock()
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	_ = p.cmd.Process.Signal(sig)
}

// wait waits for the process to exit, at most d.
func (p *proc) wait(d time.Duration) bool {
	select {
	case <-p.done:
		return true
	case <-time.After(d):
		return false
	}
}

func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// exit returns the exit code (-1 while running or when killed by a signal)
// and the signal that ended it.
func (p *proc) exit() (int, string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.exitCode, p.signaled
}

// stop asks for a graceful stop (SIGTERM) and kills the process if it is
// still there after grace. It reports whether the process exited by itself.
func (p *proc) stop(grace time.Duration) bool {
	if !p.alive() {
		return true
	}
	p.signal(syscall.SIGTERM)
	if p.wait(grace) {
		return true
	}
	p.signal(syscall.SIGKILL)
	p.wait(10 * time.Second)
	return false
}

func (p *proc) describeExit() string {
	code, sig := p.exit()
	if sig != "" {
		return "killed by " + sig
	}
	return fmt.Sprintf("exit %d", code)
}

// killAll kills every live worker and waits briefly for them.
func (ps *procs) killAll() {
	ps.mu.Lock()
	var l []*proc
	for p := range ps.live {
		l = append(l, p)
	}
	ps.mu.Unlock()
	for _, p := range l {
		p.signal(syscall.SIGKILL)
	}
	for _, p := range l {
		p.wait(5 * time.Second)
	}
}

// assigned reports whether the consumer process has logged an assignment
// (an "A" line in its record file).
func (p *proc) assigned() bool {
	f, err := os.Open(p.Cfg.Out)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte("A ")) {
			return true
		}
	}
	return false
}

// awaitAssigned waits up to d for the consumer process to log an
// assignment. On kfake a member killed while its JoinGroup is pending is
// never expired (kfake arms a member's session timer only when its JoinGroup
// response is delivered, and the leader's SyncGroup cancels the pending-sync
// timer), so it keeps its partitions for the rest of the run; Apache Kafka
// expires it after the session timeout. Scenarios that SIGKILL consumers on
// kfake therefore kill only members that have joined.
func (p *proc) awaitAssigned(d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if p.assigned() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-p.done:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}
