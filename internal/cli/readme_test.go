package cli

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestREADMEStartsWithTheTwoCommands: the README's first code block is
// what a newcomer on a fresh machine runs, so it holds exactly the two
// commands they need, dev and the tests, and its test command is the one
// CI runs.
func TestREADMEStartsWithTheTwoCommands(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile("(?s)```sh\n(.*?)```").FindSubmatch(readme)
	if block == nil {
		t.Fatal("README has no sh code block")
	}
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(string(block[1])), "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		cmds = append(cmds, strings.TrimSpace(cmd))
	}
	test := "go test -race -count=1 -timeout 15m ./..."
	if want := []string{"go run . dev", test}; !slices.Equal(cmds, want) {
		t.Errorf("README's first commands: got %q, want %q", cmds, want)
	}
	ci, err := os.ReadFile("../../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(strings.Split(string(ci), "\n"), test) {
		t.Errorf(".ci/run does not run the README's test command %q", test)
	}
}
