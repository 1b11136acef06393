package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// MemStatus is a process's resident memory from /proc/PID/status, in bytes.
type MemStatus struct {
	RSS uint64 // VmRSS: resident now
	HWM uint64 // VmHWM: the peak resident size since the process started
}

// ReadMemStatus reads the memory lines of /proc/PID/status (Linux only).
func ReadMemStatus(pid int) (MemStatus, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return MemStatus{}, fmt.Errorf("loadgen: read memory of pid %d: %w", pid, err)
	}
	defer f.Close()
	m, err := ParseMemStatus(f)
	if err != nil {
		return MemStatus{}, fmt.Errorf("loadgen: read memory of pid %d: %w", pid, err)
	}
	return m, nil
}

// ParseMemStatus reads VmRSS and VmHWM from the text of a /proc/PID/status
// file; both must be present.
func ParseMemStatus(r io.Reader) (MemStatus, error) {
	var m MemStatus
	var haveRSS, haveHWM bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok || (key != "VmRSS" && key != "VmHWM") {
			continue
		}
		fields := strings.Fields(val)
		if len(fields) != 2 || fields[1] != "kB" {
			return MemStatus{}, fmt.Errorf("malformed %s line %q", key, sc.Text())
		}
		kb, err := strconv.ParseUint(fields[0], 10, 64)
		if err != nil || kb > 1<<53 {
			return MemStatus{}, fmt.Errorf("malformed %s value %q", key, fields[0])
		}
		if key == "VmRSS" {
			m.RSS, haveRSS = kb<<10, true
		} else {
			m.HWM, haveHWM = kb<<10, true
		}
	}
	if err := sc.Err(); err != nil {
		return MemStatus{}, err
	}
	if !haveRSS || !haveHWM {
		return MemStatus{}, errors.New("no VmRSS or VmHWM line (kernel thread, or not Linux)")
	}
	return m, nil
}

// userHZ is the unit of the CPU times in /proc/PID/stat: the kernel's
// USER_HZ, 100 on every architecture Linux reports to user space with.
const userHZ = 100

// ReadCPUTime reads the CPU time, user and system, that a process has used
// since it started, from /proc/PID/stat (Linux only; 10 ms resolution).
func ReadCPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("loadgen: read cpu time of pid %d: %w", pid, err)
	}
	d, err := ParseCPUTime(b)
	if err != nil {
		return 0, fmt.Errorf("loadgen: read cpu time of pid %d: %w", pid, err)
	}
	return d, nil
}

// ParseCPUTime reads utime and stime from the text of a /proc/PID/stat
// file. The command name in its second field may hold spaces and
// parentheses, so the fields are counted from the last ')'.
func ParseCPUTime(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat: no ')' after the command name")
	}
	// After the name: state (field 3), then fields 4..; utime and stime are
	// fields 14 and 15.
	fields := strings.Fields(string(stat[i+1:]))
	const utime = 14 - 3
	if len(fields) <= utime+1 {
		return 0, fmt.Errorf("malformed stat: %d fields after the command name", len(fields))
	}
	var ticks uint64
	for _, f := range fields[utime : utime+2] {
		n, err := strconv.ParseUint(f, 10, 64)
		if err != nil || n > 1<<40 {
			return 0, fmt.Errorf("malformed stat: cpu time %q", f)
		}
		ticks += n
	}
	return time.Duration(ticks) * (time.Second / userHZ), nil
}

// Command describes a child process.
type Command struct {
	Name string // label for errors and reports
	Path string
	Args []string
	Env  []string // added to this process's environment
	// Log receives the child's stderr (and its stdout after the listening
	// line); empty discards them.
	Log string
}

// Process is a running child. Kill and Stop are safe to call more than
// once and from several goroutines.
type Process struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{}
	err  error // set before done is closed
	logF *os.File
	once sync.Once
}

// Start starts c. The child gets SIGKILL if this process dies first
// (on Linux), so a crashed benchmark leaves no server behind.
func Start(c Command) (*Process, error) {
	p, _, err := start(c, false)
	return p, err
}

// StartServer starts c, a server that prints "listening <URL>" as the first
// line of its stdout once it accepts connections (as Serve does), and
// returns that URL. It gives up when ctx ends or the child exits first.
func StartServer(ctx context.Context, c Command) (*Process, string, error) {
	p, lines, err := start(c, true)
	if err != nil {
		return nil, "", err
	}
	select {
	case line, ok := <-lines:
		u, found := strings.CutPrefix(line, ListeningPrefix)
		if !ok || !found {
			p.Kill()
			return nil, "", fmt.Errorf("loadgen: %s did not say where it listens (got %q)%s", p.name, line, p.logHint())
		}
		return p, strings.TrimSpace(u), nil
	case <-ctx.Done():
		p.Kill()
		return nil, "", fmt.Errorf("loadgen: start %s: %w", p.name, ctx.Err())
	}
}

func start(c Command, readLine bool) (*Process, <-chan string, error) {
	if c.Path == "" {
		return nil, nil, errors.New("loadgen: start: empty command path")
	}
	name := c.Name
	if name == "" {
		name = c.Path
	}
	p := &Process{name: name, log: c.Log, done: make(chan struct{})}
	cmd := exec.Command(c.Path, c.Args...)
	cmd.Env = append(os.Environ(), c.Env...)
	cmd.SysProcAttr = sysProcAttr()
	var out io.Writer = io.Discard
	if c.Log != "" {
		f, err := os.OpenFile(c.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, nil, fmt.Errorf("loadgen: start %s: %w", name, err)
		}
		p.logF = f
		out = f
		cmd.Stderr = f
	}
	var lines chan string
	var pr, pw *os.File
	if readLine {
		var err error
		// An *os.File (not StdoutPipe) so Wait never races the reader.
		pr, pw, err = os.Pipe()
		if err != nil {
			p.closeLog()
			return nil, nil, fmt.Errorf("loadgen: start %s: %w", name, err)
		}
		cmd.Stdout = pw
	} else if p.logF != nil {
		cmd.Stdout = p.logF
	}
	if err := cmd.Start(); err != nil {
		p.closeLog()
		if pr != nil {
			pr.Close()
			pw.Close()
		}
		return nil, nil, fmt.Errorf("loadgen: start %s: %w", name, err)
	}
	p.cmd = cmd
	if readLine {
		pw.Close()
		lines = make(chan string, 1)
		go func() {
			defer pr.Close()
			br := bufio.NewReader(pr)
			line, err := br.ReadString('\n')
			if err != nil && line == "" {
				close(lines)
			} else {
				lines <- strings.TrimRight(line, "\r\n")
			}
			// Keep draining: a child blocked on a full pipe would stall.
			io.Copy(out, br)
		}()
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, lines, nil
}

// Name is the label given in the Command.
func (p *Process) Name() string { return p.name }

// PID is the child's process id.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Done is closed once the child has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Err is the child's exit error once Done is closed.
func (p *Process) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// MemStatus reads the child's memory (it must not have exited).
func (p *Process) MemStatus() (MemStatus, error) {
	select {
	case <-p.done:
		return MemStatus{}, fmt.Errorf("loadgen: %s has exited: %v%s", p.name, p.err, p.logHint())
	default:
	}
	return ReadMemStatus(p.PID())
}

// CPUTime reads the CPU time the child has used so far (it must not have
// exited).
func (p *Process) CPUTime() (time.Duration, error) {
	select {
	case <-p.done:
		return 0, fmt.Errorf("loadgen: %s has exited: %v%s", p.name, p.err, p.logHint())
	default:
	}
	return ReadCPUTime(p.PID())
}

// Kill sends SIGKILL and waits for the child to exit.
func (p *Process) Kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill()
		<-p.done
	}
	p.closeLog()
}

// Stop asks the child to exit with SIGTERM and kills it after grace.
// It reports whether the child exited by itself in time.
func (p *Process) Stop(grace time.Duration) bool {
	select {
	case <-p.done:
		p.closeLog()
		return true
	default:
	}
	p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		p.closeLog()
		return true
	case <-t.C:
		p.Kill()
		return false
	}
}

// WaitHTTP polls url every few milliseconds until it answers 200, and
// returns how long that took. It fails when ctx ends or the child exits.
func (p *Process) WaitHTTP(ctx context.Context, url string) (time.Duration, error) {
	start := time.Now()
	client := &http.Client{Timeout: time.Second}
	defer client.CloseIdleConnections()
	const every = 5 * time.Millisecond
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, fmt.Errorf("loadgen: wait for %s: %w", p.name, err)
		}
		if resp, err := client.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return time.Since(start), nil
			}
		}
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, fmt.Errorf("loadgen: wait for %s at %s: %w%s", p.name, url, ctx.Err(), p.logHint())
		case <-p.done:
			t.Stop()
			return 0, fmt.Errorf("loadgen: %s exited while starting: %v%s", p.name, p.err, p.logHint())
		case <-t.C:
		}
	}
}

// closeLog closes the log; callers make sure the child has exited (or
// never started), so nothing writes to it any more.
func (p *Process) closeLog() {
	p.once.Do(func() {
		if p.logF != nil {
			p.logF.Close()
		}
	})
}

// logHint points at the child's log, with its last lines, for errors.
func (p *Process) logHint() string {
	if p.log == "" {
		return ""
	}
	data, err := os.ReadFile(p.log)
	if err != nil || len(data) == 0 {
		return " (log: " + p.log + ")"
	}
	const tail = 600
	if len(data) > tail {
		data = data[len(data)-tail:]
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			data = data[i+1:]
		}
	}
	return fmt.Sprintf(" (log %s ends: %s)", p.log, strings.TrimSpace(string(data)))
}

// Group owns the children of a run and kills them all on Close, so no
// exit path (error, SIGINT, panic in a defer chain) leaves one running.
type Group struct {
	mu     sync.Mutex
	procs  []*Process
	closed bool
}

// Start starts c and adds it to the group.
func (g *Group) Start(c Command) (*Process, error) {
	return g.add(Start(c))
}

// StartServer is StartServer for a child of the group.
func (g *Group) StartServer(ctx context.Context, c Command) (*Process, string, error) {
	p, u, err := StartServer(ctx, c)
	if _, err := g.add(p, err); err != nil {
		return nil, "", err
	}
	return p, u, nil
}

func (g *Group) add(p *Process, err error) (*Process, error) {
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		p.Kill()
		return nil, errors.New("loadgen: process group closed")
	}
	g.procs = append(g.procs, p)
	return p, nil
}

// Close kills every child still running and closes their logs. It is safe
// to call twice.
func (g *Group) Close() {
	g.mu.Lock()
	procs := g.procs
	g.procs, g.closed = nil, true
	g.mu.Unlock()
	for _, p := range procs {
		p.Kill()
	}
}

// FreeAddr returns a loopback address with a port that was free a moment
// ago, for servers that cannot report the port they bound (the port may be
// taken again in between; on a quiet machine it is not).
func FreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("loadgen: free port: %w", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr, nil
}
