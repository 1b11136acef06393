package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/sidehook/sidehook/internal/loadgen"
)

// writeSysfs writes files, by path under root, each holding its value
// and a newline, as sysfs shows them.
func writeSysfs(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, v := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestReadDAMON(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{
			name: "a paddr pageout scheme",
			files: map[string]string{
				"nr_kdamonds":             "1",
				"0/state":                 "on",
				"0/contexts/nr_contexts":  "1",
				"0/contexts/0/operations": "paddr",
				"0/contexts/0/monitoring_attrs/intervals/sample_us": "500000",
				"0/contexts/0/schemes/nr_schemes":                   "1",
				"0/contexts/0/schemes/0/action":                     "pageout",
			},
			want: "on (kdamond 0: paddr every 500ms, pageout)",
		},
		{
			name: "stopped",
			files: map[string]string{
				"nr_kdamonds": "1",
				"0/state":     "off",
			},
			want: "off",
		},
		{
			name:  "none configured",
			files: map[string]string{"nr_kdamonds": "0"},
			want:  "off",
		},
		{
			name: "two, one without schemes",
			files: map[string]string{
				"0/state":                 "on",
				"0/contexts/0/operations": "vaddr",
				"0/contexts/0/monitoring_attrs/intervals/sample_us": "5000",
				"1/state":                       "on",
				"1/contexts/0/operations":       "paddr",
				"1/contexts/0/schemes/0/action": "lru_prio",
				"1/contexts/0/schemes/1/action": "pageout",
			},
			want: "on (kdamond 0: vaddr every 5ms; kdamond 1: paddr, lru_prio+pageout)",
		},
		{
			name: "numeric order, nothing to describe",
			files: map[string]string{
				"10/state": "on",
				"2/state":  "on",
			},
			want: "on (kdamond 2: no contexts; kdamond 10: no contexts)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			writeSysfs(t, root, tt.files)
			if got := readDAMON(root); got != tt.want {
				t.Errorf("readDAMON = %q, want %q", got, tt.want)
			}
		})
	}
	if got := readDAMON(filepath.Join(t.TempDir(), "missing")); got != "" {
		t.Errorf("without the sysfs interface: got %q, want \"\"", got)
	}
}

func TestKdamondMeter(t *testing.T) {
	root := t.TempDir()
	self := strconv.Itoa(os.Getpid())
	writeSysfs(t, root, map[string]string{
		"0/state": "on", "0/pid": self, // this process stands in for a kdamond
		"1/state": "off", "1/pid": "1",
		"2/state": "on", // starting: no pid yet
	})
	if got := damonPIDs(root); len(got) != 1 || got[0] != os.Getpid() {
		t.Fatalf("damonPIDs = %v, want [%d]", got, os.Getpid())
	}
	m := startKdamondMeter(root)
	// Spin until the kernel has charged this process a tick of CPU.
	start, err := loadgen.ReadCPUTime(os.Getpid())
	if err != nil {
		t.Fatalf("read cpu time: %v", err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		if now, _ := loadgen.ReadCPUTime(os.Getpid()); now > start {
			break
		}
	}
	if got := m.share(); got <= 0 {
		t.Errorf("share = %v after spinning, want > 0", got)
	}
	if got := startKdamondMeter(filepath.Join(root, "missing")).share(); got != 0 {
		t.Errorf("share without kdamonds = %v, want 0", got)
	}
}
