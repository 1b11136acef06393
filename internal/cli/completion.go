package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
)

// The bash and zsh scripts ask the binary itself for the words that may
// follow (urfave/cli answers --generate-bash-completion), so they stay true
// as commands and flags change; fish's is generated from the definition.
// A flag being completed is passed along, but "--" as "-": urfave/cli
// takes "--" for the end of the flags and runs the command instead of
// answering.
const bashCompletion = `# bash completion for sidehook: source <(sidehook completion bash)
_sidehook_complete() {
  local cur words
  COMPREPLY=()
  cur="${COMP_WORDS[COMP_CWORD]}"
  words=("${COMP_WORDS[@]:0:COMP_CWORD}")
  local opts
  if [[ "$cur" == "--" ]]; then
    opts=$("${words[@]}" - --generate-bash-completion 2>/dev/null)
  elif [[ "$cur" == -* ]]; then
    opts=$("${words[@]}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    opts=$("${words[@]}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "${opts}" -- "${cur}"))
}
complete -o bashdefault -o default -F _sidehook_complete sidehook
`

const zshCompletion = `#compdef sidehook
# zsh completion for sidehook: sidehook completion zsh > "${fpath[1]}/_sidehook"
_sidehook() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == "--" ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} - --generate-bash-completion 2>/dev/null)}")
  elif [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
# Autoloaded from $fpath, this file is the body of the first call: complete
# now, or that first <TAB> offers nothing. Sourced, register the function.
if [[ "${funcstack[1]}" == _sidehook ]]; then
  _sidehook "$@"
else
  compdef _sidehook sidehook
fi
`

func completionCommand(e *env) *cli.Command {
	cmd := &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Description: "Load it in the current shell, or install it:\n\n" +
			"   source <(sidehook completion bash)\n" +
			"   sidehook completion zsh > \"${fpath[1]}/_sidehook\"\n" +
			"   sidehook completion fish > ~/.config/fish/completions/sidehook.fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return usageErrorf("completion: name one shell: bash, zsh or fish")
			}
			switch shell := c.Args().First(); shell {
			case "bash":
				e.printf("%s", bashCompletion)
			case "zsh":
				e.printf("%s", zshCompletion)
			case "fish":
				script, err := forGenerator(c.App).ToFishCompletion()
				if err != nil {
					return fmt.Errorf("completion: fish: %w", err)
				}
				e.printf("%s\n", strings.TrimRight(script, "\n"))
			default:
				return usageErrorf("completion: unknown shell %q: want bash, zsh or fish", shell)
			}
			return nil
		},
	}
	// What follows is a shell's name, once; its flags while one is typed.
	flags := e.completer(cmd)
	cmd.BashComplete = func(c *cli.Context) {
		if n := len(e.args); n > 2 && strings.HasPrefix(e.args[n-2], "-") {
			flags(c)
			return
		}
		if c.NArg() == 0 {
			fmt.Fprintln(c.App.Writer, "bash\nzsh\nfish")
		}
	}
	return cmd
}

// completer answers --generate-bash-completion, for the app (cmd nil) or a
// command: the flags that start with the word being completed when it
// starts with -, else the commands. urfave/cli's default reads os.Args;
// this reads the arguments Run was given.
func (e *env) completer(cmd *cli.Command) cli.BashCompleteFunc {
	return func(c *cli.Context) {
		typed := ""
		// The scripts pass the word being completed, when it is a flag,
		// just before --generate-bash-completion.
		if n := len(e.args); n > 2 && strings.HasPrefix(e.args[n-2], "-") {
			typed = e.args[n-2]
		}
		flags := c.App.Flags
		if cmd != nil {
			flags = cmd.Flags
		}
		// A whole flag name there is the word being completed or, more
		// often, the word before it (send --event <TAB>). A flag's value
		// comes next: no words, so the shell completes file names. After
		// a boolean flag, the words as after no flag: the shell keeps
		// those that start with the word, so --json<TAB> still completes.
		if f := flagNamed(flags, typed); f != nil {
			if takesValue(f) {
				return
			}
			typed = ""
		}
		if cmd != nil {
			if typed == "" {
				for _, sub := range cmd.Subcommands {
					if !sub.Hidden {
						fmt.Fprintln(c.App.Writer, sub.Name)
					}
				}
			}
			completeFlags(c.App.Writer, typed, flags)
			return
		}
		if typed != "" {
			completeFlags(c.App.Writer, typed, flags)
			return
		}
		for _, sub := range c.App.Commands {
			if !sub.Hidden {
				fmt.Fprintln(c.App.Writer, sub.Name)
			}
		}
	}
}

// flagNamed is the flag of flags written typed (--name), or nil.
func flagNamed(flags []cli.Flag, typed string) cli.Flag {
	name := strings.TrimLeft(typed, "-")
	if name == "" {
		return nil
	}
	for _, f := range flags {
		if slices.Contains(f.Names(), name) {
			return f
		}
	}
	return nil
}

// takesValue reports whether flag f is followed by its value (--event
// payment), unlike a boolean flag (--json).
func takesValue(f cli.Flag) bool {
	if r, ok := f.(*renamed); ok {
		f = r.Flag
	}
	d, ok := f.(cli.DocGenerationFlag)
	return ok && d.TakesValue()
}

// completeFlags prints the visible flags' long names that start with typed
// ("-" or "--" list them all).
func completeFlags(w io.Writer, typed string, flags []cli.Flag) {
	prefix := strings.TrimLeft(typed, "-")
	for _, f := range flags {
		if v, ok := f.(cli.VisibleFlag); !ok || !v.IsVisible() {
			continue
		}
		for _, name := range f.Names() {
			if len(name) > 1 && strings.HasPrefix(name, prefix) {
				fmt.Fprintln(w, "--"+name)
			}
		}
	}
}
