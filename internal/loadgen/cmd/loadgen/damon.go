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
// commits by 10-25 ms every half second here and set the p99 (see
// docs/BENCHMARKS.md), so a report must say whether it ran.
func readDAMON(root string) string {
	if _, err := os.Stat(root); err != nil {
		return ""
	}
	var on []string
	for _, k := range numberedDirs(root) {
		dir := filepath.Join(root, k)
		if sysfsValue(dir, "state") == "on" {
			on = append(on, "kdamond "+k+": "+describeContexts(filepath.Join(dir, "contexts")))
		}
	}
	if len(on) == 0 {
		return "off"
	}
	return "on (" + strings.Join(on, "; ") + ")"
}

// describeContexts is what a kdamond monitors, how often it samples and
// what its schemes do: "paddr every 500ms, pageout".
func describeContexts(dir string) string {
	var out []string
	for _, c := range numberedDirs(dir) {
		ctx := filepath.Join(dir, c)
		d := sysfsValue(ctx, "operations")
		if us, err := strconv.ParseInt(sysfsValue(ctx, "monitoring_attrs/intervals/sample_us"), 10, 64); err == nil {
			d += fmt.Sprintf(" every %v", time.Duration(us)*time.Microsecond)
		}
		var actions []string
		for _, sc := range numberedDirs(filepath.Join(ctx, "schemes")) {
			actions = append(actions, sysfsValue(filepath.Join(ctx, "schemes", sc), "action"))
		}
		if len(actions) > 0 {
			d += ", " + strings.Join(actions, "+")
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return "no contexts"
	}
	return strings.Join(out, ", ")
}

// numberedDirs lists the entries of a DAMON sysfs directory that are
// numbered (kdamonds, contexts, schemes: "0", "1", …), in numeric order;
// the others are counters such as nr_kdamonds.
func numberedDirs(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var nums []int
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	names := make([]string, len(nums))
	for i, n := range nums {
		names[i] = strconv.Itoa(n)
	}
	return names
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
	var pids []int
	for _, k := range numberedDirs(root) {
		dir := filepath.Join(root, k)
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
	cpu   map[int]time.Duration // by pid, at the start
	start time.Time
}

func startKdamondMeter(root string) kdamondMeter {
	m := kdamondMeter{cpu: make(map[int]time.Duration), start: time.Now()}
	for _, pid := range damonPIDs(root) {
		if t, err := loadgen.ReadCPUTime(pid); err == nil {
			m.cpu[pid] = t
		}
	}
	return m
}

// share is the kdamonds' CPU time since the start, in percent of one CPU;
// 0 when none ran. A kdamond stopped meanwhile is left out.
func (m kdamondMeter) share() float64 {
	el := time.Since(m.start)
	if len(m.cpu) == 0 || el <= 0 {
		return 0
	}
	var used time.Duration
	for pid, before := range m.cpu {
		if now, err := loadgen.ReadCPUTime(pid); err == nil && now >= before {
			used += now - before
		}
	}
	return 100 * float64(used) / float64(el)
}
