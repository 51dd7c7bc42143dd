package cfgtool

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

// Stream returns a Lines that sends every line to the build's log as
// stream ("stdout", "stderr") and keeps the last keep of them.
func Stream(ui *event.UI, stream string, keep int) *Lines {
	return NewLines(keep, func(line string) { Emit(ui, stream, line) })
}

// Emit sends one line of a tool's output to the build's log.
func Emit(ui *event.UI, stream, line string) {
	ui.Emit(event.Event{Type: event.Output, Stream: stream, Message: line})
}

// Sudo returns "sudo -n " when the machine's user is not root (and so a
// tool that changes the system must run through sudo), "" when it is.
func Sudo(ctx context.Context, comm engine.Communicator) (string, error) {
	var out strings.Builder
	status, err := comm.Run(ctx, &engine.Command{Command: "id -u", Stdout: &out})
	if err != nil {
		return "", fmt.Errorf("asking the machine who its user is: %w", err)
	}
	if status != 0 {
		return "", fmt.Errorf("id -u exited with status %d on the machine", status)
	}
	if strings.TrimSpace(out.String()) == "0" {
		return "", nil
	}
	return "sudo -n ", nil
}

// Packages names the packages that install a tool, for each package
// manager; an entry "a|b" installs a, or b when there is no a (ansible-core
// on Debian 12, ansible on older releases).
type Packages struct {
	Apt []string
	Dnf []string
}

// ErrNoPackageManager is Install's error on a machine without apt-get or
// dnf.
var ErrNoPackageManager = errors.New("the machine has neither apt-get nor dnf")

// noManager is what the install script prints when it finds neither.
const noManager = "imgbuild-no-package-manager"

// Install makes sure the machine has command (ansible-playbook, puppet),
// installing pkgs through its package manager when it has not: apt-get
// (after apt-get update) or dnf, through sudo when the user is not root.
// Output streams to the build's log. builtin names the provisioner in
// messages ("puppet_apply").
func Install(ctx context.Context, env *engine.ProvisionEnv, builtin, command string, pkgs Packages) error {
	script := installScript(command, pkgs)
	noPM := false
	stdout := NewLines(0, func(line string) {
		if line == noManager {
			noPM = true
			return
		}
		Emit(env.UI, "stdout", line)
	})
	stderr := Stream(env.UI, "stderr", 8)
	env.UI.Say("%s: installing %s through the machine's package manager (install = True)", builtin, command)
	status, err := env.Comm.Run(ctx, &engine.Command{Command: script, Stdout: stdout, Stderr: stderr})
	stdout.Close()
	stderr.Close()
	if err != nil {
		return fmt.Errorf("%s: installing %s: %w", builtin, command, err)
	}
	if noPM {
		return fmt.Errorf("%s: install = True needs apt-get or dnf on the machine to install %s, and it has neither: install %s in an earlier provisioner, or use an image that has it, and leave install out: %w",
			builtin, command, command, ErrNoPackageManager)
	}
	if status != 0 {
		return fmt.Errorf("%s: installing %s failed with exit status %d; last lines of stderr:%s", builtin, command, status, Indent(stderr.Last()))
	}
	return nil
}

// installScript is the shell script Install runs.
func installScript(command string, pkgs Packages) string {
	install := func(cmd string, list []string) string {
		var parts []string
		for _, entry := range list {
			var alts []string
			for _, p := range strings.Split(entry, "|") {
				alts = append(alts, "$SUDO "+cmd+" "+shellquote.Quote(p))
			}
			parts = append(parts, "{ "+strings.Join(alts, " || ")+"; }")
		}
		return strings.Join(parts, " && ")
	}
	c := shellquote.Quote(command)
	return strings.Join([]string{
		"set -e",
		"if p=$(command -v " + c + "); then echo \"" + command + " is already installed ($p)\"; exit 0; fi",
		`if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO="sudo -n"; fi`,
		"if command -v apt-get >/dev/null 2>&1; then",
		"  export DEBIAN_FRONTEND=noninteractive",
		"  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q",
		"  " + install("env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends", pkgs.Apt),
		"elif command -v dnf >/dev/null 2>&1; then",
		"  " + install("dnf install -y -q", pkgs.Dnf),
		"else",
		"  echo " + noManager,
		"  exit 1",
		"fi",
		"command -v " + c + " >/dev/null || { echo \"the packages were installed, but there is still no " + command + " on PATH\" >&2; exit 1; }",
	}, "\n")
}
