package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sidehook/sidehook/internal/loadgen"
)

// damonAdmin is where Linux's DAMON sysfs interface lists its monitoring
// threads (kdamonds).
const damonAdmin = "/sys/kernel/mm/damon/admin/kdamonds"

// readDAMON describes the DAMON kernel threads running on this machine, or
// "" when the kernel has no DAMON sysfs interface. Some VMs run DAMON to
// reclaim memory for the host; its sampling stalled the receiver's
// fdatasync by 10-20 ms every half second here and set the p99 (see
// docs/BENCHMARKS.md), so a report must say whether it ran.
func readDAMON(root string) string {
	entries, err := os.ReadDir(root)
	if err != nil {
		return ""
	}
	var on []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue // nr_kdamonds
		}
		dir := filepath.Join(root, e.Name())
		if sysfsValue(dir, "state") != "on" {
			continue
		}
		on = append(on, "kdamond "+e.Name()+": "+describeContexts(filepath.Join(dir, "contexts")))
	}
	if len(on) == 0 {
		return "off"
	}
	slices.Sort(on)
	return "on (" + strings.Join(on, "; ") + ")"
}

// describeContexts is what a kdamond monitors, how often it samples and
// what its schemes do: "paddr every 500ms, pageout".
func describeContexts(dir string) string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "unreadable"
	}
	var out []string
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		ctx := filepath.Join(dir, e.Name())
		d := sysfsValue(ctx, "operations")
		if us, err := strconv.ParseInt(sysfsValue(ctx, "monitoring_attrs/intervals/sample_us"), 10, 64); err == nil {
			d += fmt.Sprintf(" every %v", time.Duration(us)*time.Microsecond)
		}
		schemes, _ := os.ReadDir(filepath.Join(ctx, "schemes"))
		var actions []string
		for _, s := range schemes {
			if _, err := strconv.Atoi(s.Name()); err == nil {
				actions = append(actions, sysfsValue(filepath.Join(ctx, "schemes", s.Name()), "action"))
			}
		}
		if len(actions) > 0 {
			d += ", " + strings.Join(actions, "+")
		}
		out = append(out, d)
	}
	return strings.Join(out, ", ")
}

func sysfsValue(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}

// damonPIDs lists the pids of the kdamonds that are on.
func damonPIDs(root string) []int {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		dir := filepath.Join(root, e.Name())
		if sysfsValue(dir, "state") != "on" {
			continue
		}
		if pid, err := strconv.Atoi(sysfsValue(dir, "pid")); err == nil && pid > 0 {
			pids = append(pids, pid)
		}
	}
	return pids
}

// kdamondMeter measures the share of one CPU the kdamonds running at its
// start use until share is called: what DAMON took from the run.
type kdamondMeter struct {
	pids  []int
	cpu   time.Duration
	start time.Time
}

func startKdamondMeter(root string) kdamondMeter {
	m := kdamondMeter{pids: damonPIDs(root), start: time.Now()}
	m.cpu = m.total()
	return m
}

func (m kdamondMeter) total() time.Duration {
	var d time.Duration
	for _, pid := range m.pids {
		if t, err := loadgen.ReadCPUTime(pid); err == nil {
			d += t
		}
	}
	return d
}

// share is the kdamonds' CPU time since the start, in percent of one CPU;
// 0 when none ran.
func (m kdamondMeter) share() float64 {
	el := time.Since(m.start)
	if len(m.pids) == 0 || el <= 0 {
		return 0
	}
	return 100 * float64(m.total()-m.cpu) / float64(el)
}
