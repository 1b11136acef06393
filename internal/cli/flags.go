package cli

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/sidehook/sidehook/internal/httpguard"
)

// globalCategory heads the global flags in a command's help.
const globalCategory = "GLOBAL"

// globalFlags are the flags of the whole program. urfave/cli takes an app's
// flags only before the command's name, so every command declares them too
// (fresh copies, in category) and inheritGlobals reconciles the two.
func globalFlags(category string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "log-format", Category: category, Usage: "console or json (default: console on a terminal, json otherwise)"},
		&cli.StringFlag{Name: "log-level", Category: category, Value: "info", Usage: "debug, info, warn or error"},
		&cli.StringFlag{Name: "memory-limit", Category: category,
			Usage: "soft limit of the Go heap for relay, receive and dev (e.g. 192MiB; 0 for none; default " +
				relayMemoryLimit + " for relay, " + defaultMemoryLimit + " for receive and dev; GOMEMLIMIT, when set, wins)"},
	}
}

// inheritGlobals gives a command's copy of each global flag the value given
// before the command's name, unless it was given after it too (the later,
// more specific one wins).
func inheritGlobals(c *cli.Context) error {
	for _, f := range globalFlags("") {
		name := f.Names()[0]
		if c.IsSet(name) {
			continue
		}
		// The app's flags live in an ancestor context; which one depends
		// on urfave/cli's internals, so look in each.
		for _, parent := range c.Lineage()[1:] {
			if parent.NumFlags() == 0 || !parent.IsSet(name) {
				continue
			}
			if err := c.Set(name, parent.String(name)); err != nil {
				return usageErrorf("--%s: %v", name, err)
			}
			break
		}
	}
	return nil
}

// renamed is the old name of a renamed flag: hidden from help, man page and
// completions (it implements none of their interfaces), and read into the
// new name by readAliases, so scripts written for the old name still work.
type renamed struct {
	cli.Flag
	to string
}

// oldName keeps old as a hidden alias of the flag now called to. kind is a
// flag of the same type as the new one; only its type matters.
func oldName(old, to string, kind cli.Flag) cli.Flag {
	var f cli.Flag
	switch kind.(type) {
	case *cli.DurationFlag:
		f = &cli.DurationFlag{Name: old, Hidden: true}
	case *cli.StringSliceFlag:
		f = &cli.StringSliceFlag{Name: old, Hidden: true}
	default:
		f = &cli.StringFlag{Name: old, Hidden: true}
	}
	return &renamed{Flag: f, to: to}
}

// readAliases moves each renamed flag's value to its new name; giving both
// names is a usage error.
func readAliases(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		r, ok := f.(*renamed)
		if !ok {
			continue
		}
		old := r.Names()[0]
		if !c.IsSet(old) {
			continue
		}
		if c.IsSet(r.to) {
			return usageErrorf("%s: give --%s only (--%s is its old name)", c.Command.Name, r.to, old)
		}
		var values []string
		switch v := c.Value(old).(type) {
		case time.Duration:
			values = []string{v.String()}
		case cli.StringSlice:
			values = v.Value()
		default:
			values = []string{fmt.Sprint(v)}
		}
		for _, v := range values {
			if err := c.Set(r.to, v); err != nil {
				return usageErrorf("%s: --%s %q: %v", c.Command.Name, old, v, err)
			}
		}
	}
	return nil
}

// sharedEnv names the flags that mean the same thing in every command that
// has them, so one variable serves them all: the global flags, and what
// identifies the organisation and the servers (SIDEHOOK_API_KEY is the key
// the relay accepts and the key send, test, render and replay present).
// Every other flag's own variable carries its command's name, as
// SIDEHOOK_RELAY_LISTEN and SIDEHOOK_RECEIVE_LISTEN do (see envNames).
func sharedEnv(flag string) (string, bool) {
	switch flag {
	case "log-format", "log-level", "memory-limit",
		"org", "api-key", "secret-key", "standard-secret", "jwt-secret",
		"issuer", "audience", "admin-token":
		return "SIDEHOOK_" + envWord(flag), true
	case "relay":
		// Not SIDEHOOK_RELAY: that is the prefix of the relay command's own.
		return "SIDEHOOK_RELAY_URL", true
	}
	return "", false
}

// envName is the environment variable of command cmd's flag ("" for the
// app's own flags, which are all shared): the one its help names first and
// errors name.
func envName(cmd, flag string) string { return envNames(cmd, flag)[0] }

// envNames are the variables cmd's flag reads, the first set winning: its
// command's own, then SIDEHOOK_<FLAG>, the name SPEC §1 gives every flag,
// which every command with that flag reads (SIDEHOOK_LISTEN is the listen
// address of relay, receive and the rest, where SIDEHOOK_RECEIVE_LISTEN is
// receive's alone). A shared flag has its one name.
func envNames(cmd, flag string) []string {
	if name, ok := sharedEnv(flag); ok {
		return []string{name}
	}
	generic := "SIDEHOOK_" + envWord(flag)
	if cmd == "" {
		return []string{generic}
	}
	return []string{"SIDEHOOK_" + envWord(cmd) + "_" + envWord(flag), generic}
}

func envWord(s string) string {
	return strings.ToUpper(strings.ReplaceAll(s, "-", "_"))
}

// hasEnv says whether a flag reads a variable: not help, version, or a
// renamed flag's old name.
func hasEnv(f cli.Flag) bool {
	if _, ok := f.(*renamed); ok {
		return false
	}
	name := f.Names()[0]
	return name != "help" && name != "version"
}

// withEnv names each flag's environment variable in its help text. The value
// is read by applyEnv through the injected getenv, not by urfave/cli (which
// would read the real process environment and leak it into in-process tests).
func (e *env) withEnv(cmd string, flags []cli.Flag) []cli.Flag {
	for _, f := range flags {
		if !hasEnv(f) {
			continue
		}
		suffix := " [$" + strings.Join(envNames(cmd, f.Names()[0]), ", $") + "]"
		usage := usageOf(f)
		// Idempotent, so preparing a command twice does no harm.
		if usage != nil && !strings.HasSuffix(*usage, suffix) {
			*usage += suffix
		}
	}
	return flags
}

// usageOf is a pointer to f's usage text, nil for a kind of flag sidehook
// does not use.
func usageOf(f cli.Flag) *string {
	switch f := f.(type) {
	case *cli.StringFlag:
		return &f.Usage
	case *cli.StringSliceFlag:
		return &f.Usage
	case *cli.BoolFlag:
		return &f.Usage
	case *cli.IntFlag:
		return &f.Usage
	case *cli.Float64Flag:
		return &f.Usage
	case *cli.DurationFlag:
		return &f.Usage
	case *cli.GenericFlag:
		return &f.Usage
	}
	return nil
}

// applyEnv sets every flag of the command not given on the command line
// from its environment variable. A slice flag takes a comma-separated list.
func (e *env) applyEnv(c *cli.Context) error {
	if c.Command == nil {
		return nil
	}
	return e.applyEnvFlags(c, c.Command.Name, c.Command.Flags)
}

// applyGlobalEnv is applyEnv for the app's own flags.
func (e *env) applyGlobalEnv(c *cli.Context) error {
	return e.applyEnvFlags(c, "", c.App.Flags)
}

func (e *env) applyEnvFlags(c *cli.Context, cmd string, flags []cli.Flag) error {
	// A renamed flag's old name keeps its variables too (SPEC §1 gives every
	// flag one, and SPEC names --webio-secret), read after the new name's.
	oldNames := map[string][]string{}
	for _, f := range flags {
		if r, ok := f.(*renamed); ok {
			oldNames[r.to] = append(oldNames[r.to], r.Names()[0])
		}
	}
	for _, f := range flags {
		if !hasEnv(f) {
			continue
		}
		name := f.Names()[0]
		if c.IsSet(name) {
			continue
		}
		variables := envNames(cmd, name)
		for _, old := range oldNames[name] {
			variables = append(variables, envNames(cmd, old)...)
		}
		var variable, v string
		for _, variable = range variables {
			if v = e.getenv(variable); v != "" {
				break
			}
		}
		if v == "" {
			continue
		}
		values := []string{v}
		if _, ok := f.(*cli.StringSliceFlag); ok {
			values = strings.Split(v, ",")
		}
		for _, val := range values {
			if err := c.Set(name, strings.TrimSpace(val)); err != nil {
				return usageErrorf("%s=%q: %s", variable, v, valueError(f, err))
			}
		}
		e.fromEnv[cmd+" "+name] = variable
	}
	return nil
}

// given says whether flag was given on the command line, not read from
// its environment variable.
func (e *env) given(c *cli.Context, flag string) bool {
	return c.IsSet(flag) && e.fromEnv[c.Command.Name+" "+flag] == ""
}

// source names where a flag's value came from, for an error about it: the
// flag as the user spelt it (an old name too), or its variable.
func (e *env) source(c *cli.Context, flag string) string {
	if v := e.fromEnv[c.Command.Name+" "+flag]; v != "" {
		return v
	}
	for _, f := range c.Command.Flags {
		if r, ok := f.(*renamed); ok && r.to == flag && c.IsSet(r.Names()[0]) {
			return "--" + r.Names()[0]
		}
	}
	return "--" + flag
}

// emptySecret refuses a secret flag given empty: that is almost always an
// unset variable ("--jwt-secret "$SECRET""), and read as the flag left out
// (without meaning: "no check", "no signing") it would pass or send
// everything unnoticed.
func emptySecret(c *cli.Context, e *env, without string, names ...string) error {
	for _, name := range names {
		if c.IsSet(name) && c.String(name) == "" {
			return usageErrorf("%s: %s is empty: give the secret, or leave the flag out for %s", c.Command.Name, e.source(c, name), without)
		}
	}
	return nil
}

// adminTokenFlag is --admin-token (or its variable) for cmd: empty when
// not given, else at least httpguard.MinAdminTokenLen bytes.
func adminTokenFlag(c *cli.Context, e *env, cmd string) (string, error) {
	if !c.IsSet("admin-token") {
		return "", nil
	}
	tok := c.String("admin-token")
	if err := httpguard.CheckAdminToken(tok); err != nil {
		return "", usageErrorf("%s: %s: %v", cmd, e.source(c, "admin-token"), err)
	}
	return tok, nil
}

// Go's flag package, under urfave/cli, words its errors for Go programs:
// "flag provided but not defined: -nope", "invalid value "5" for flag
// -ttl: parse error". These match them, to reword them in sidehook's.
var (
	undefinedFlag = regexp.MustCompile(`^flag provided but not defined: -+(\S+)$`)
	flagNoValue   = regexp.MustCompile(`^flag needs an argument: -+(\S+)$`)
	flagBadValue  = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-+(\S+): (.*)$`)
)

// flagError rewords a command line parse error of the command at path
// ("" for the app) whose flags are flags: the flag as it is written, and
// what a bad value should look like.
func flagError(path string, flags []cli.Flag, err error) string {
	help := "sidehook --help"
	if path != "" {
		help = "sidehook " + path + " --help"
	}
	msg := err.Error()
	if m := undefinedFlag.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("unknown flag --%s (see '%s')", m[1], help)
	}
	if m := flagNoValue.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s needs a value", m[1])
	}
	if m := flagBadValue.FindStringSubmatch(msg); m != nil {
		for _, f := range flags {
			if slices.Contains(f.Names(), m[2]) {
				return fmt.Sprintf("--%s %s: %s", f.Names()[0], m[1], valueError(f, errors.New(m[3])))
			}
		}
		return fmt.Sprintf("--%s %s: %s", m[2], m[1], m[3])
	}
	return msg
}

// valueError says what flag f wants, where the flag package's error says
// only "parse error"; any other error is f's own and says it better.
func valueError(f cli.Flag, err error) string {
	if err.Error() != "parse error" {
		return err.Error()
	}
	if r, ok := f.(*renamed); ok {
		f = r.Flag
	}
	switch f.(type) {
	case *cli.DurationFlag:
		return "want a duration such as 30s, 5m or 1h30m"
	case *cli.IntFlag:
		return "want a whole number"
	case *cli.Float64Flag:
		return "want a number"
	case *cli.BoolFlag:
		return "want true or false"
	}
	return err.Error()
}
