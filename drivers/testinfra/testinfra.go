package testinfra

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/imgbuild/imgbuild/drivers/cfgtool"
	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
)

// Testinfra is one testinfra() provisioner.
type Testinfra struct{ cfg *Config }

// Provision implements engine.Provisioner.
func (t *Testinfra) Provision(ctx context.Context, env *engine.ProvisionEnv) error {
	return cfgtool.WithTimeout(ctx, "testinfra", t.cfg.Timeout, func(ctx context.Context) error { return t.run(ctx, env) })
}

// pytest's exit statuses that mean something to the user.
const (
	pytestFailed    = 1
	pytestNoTests   = 5
	stderrKept      = 30
	summaryPattern  = `^=+ (.*(passed|failed|error|skipped|deselected|no tests ran).*) =+$`
	outcomePrefixes = "FAILED |ERROR "
)

var summaryLine = regexp.MustCompile(summaryPattern)

func (t *Testinfra) run(ctx context.Context, env *engine.ProvisionEnv) error {
	c := t.cfg
	files, err := testFiles(env.Workspace, c.TestFiles)
	if err != nil {
		return err
	}
	python, err := findTestinfra(ctx, c.Python)
	if err != nil {
		return err
	}
	sc, ok := env.Comm.(*ssh.Communicator)
	if !ok {
		return fmt.Errorf("testinfra runs on this machine and reaches the build's machine over SSH, but the %s builder does not reach its machine over SSH: test it with shell(...) instead", env.Driver)
	}
	e := sc.Endpoint()
	if !e.Verified {
		env.UI.Warn("testinfra: ssh_insecure_ignore_host_key = True: testinfra checks the host key %s presented to imgbuild, which imgbuild did not verify", e.Options.Addr())
	}
	// The agent's socket wants a short path.
	dir, err := os.MkdirTemp("", "imgbuild-testinfra-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	client, err := e.OpenSSH(ctx, dir, hostAlias(env.Build), "testinfra")
	if err != nil {
		return fmt.Errorf("testinfra: %w", err)
	}
	defer client.Close()

	// One connection for all the tests: a control master of this run's
	// own, stopped when pytest is done (or cut short).
	control := "-o ControlMaster=auto -o ControlPersist=60s -o ControlPath=" + filepath.Join(dir, "cm-%C")
	defer stopMaster(client, control)
	argv := []string{python, "-m", "pytest", "-p", "no:cacheprovider", "-v", "-rfE", "--color=no",
		"--hosts=ssh://" + client.Alias, "--ssh-config=" + client.Config, "--ssh-extra-args=" + control}
	if c.Sudo {
		argv = append(argv, "--sudo")
		if c.SudoUser != "" {
			argv = append(argv, "--sudo-user="+c.SudoUser)
		}
	}
	if c.Keyword != "" {
		argv = append(argv, "-k", c.Keyword)
	}
	if c.Marker != "" {
		argv = append(argv, "-m", c.Marker)
	}
	argv = append(append(argv, c.ExtraArguments...), files...)
	// COLUMNS: pytest cuts its summary lines (a failure's reason) to the
	// terminal's width.
	environ := []string{"PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "COLUMNS=4000"}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		environ = append(environ, k+"="+c.Env[k])
	}
	env.UI.Say("testinfra: %s against %s", shellquote.Join(argv...), e.Options.String())

	var mu sync.Mutex
	var outcomes []string
	var summary string
	stdout := cfgtool.NewLines(0, func(line string) {
		cfgtool.Emit(env.UI, "stdout", line)
		mu.Lock()
		defer mu.Unlock()
		for _, p := range strings.Split(outcomePrefixes, "|") {
			if strings.HasPrefix(line, p) {
				outcomes = append(outcomes, line)
			}
		}
		if m := summaryLine.FindStringSubmatch(line); m != nil {
			summary = m[1]
		}
	})
	stderr := cfgtool.Stream(env.UI, "stderr", stderrKept)
	status, err := local.RunShell(ctx, env.Workspace, environ, &engine.Command{Command: shellquote.Join(argv...), Stdout: stdout, Stderr: stderr})
	stdout.Close()
	stderr.Close()
	if err != nil {
		return fmt.Errorf("running testinfra: %w", err)
	}
	mu.Lock()
	defer mu.Unlock()
	what := strings.Join(shown(env.Workspace, files), ", ")
	switch status {
	case 0:
		env.UI.Say("testinfra: %s: %s", what, summary)
		return nil
	case pytestFailed:
		return fmt.Errorf("testinfra: %s: %s:%s", what, summary, cfgtool.Indent(outcomes))
	case pytestNoTests:
		return fmt.Errorf("testinfra: %s: no tests were collected (pytest runs the functions named test_* in them; -k or -m may have deselected every one)", what)
	}
	msg := fmt.Sprintf("testinfra: pytest exited with status %d on %s", status, what)
	if last := stderr.Last(); len(last) > 0 {
		msg += ":" + cfgtool.Indent(last)
	}
	return fmt.Errorf("%s", msg)
}

// testFiles resolves the test files against the workspace and checks that
// they exist (evaluation checked them too; a file may have gone since).
func testFiles(workspace string, files []string) ([]string, error) {
	out := make([]string, len(files))
	for i, f := range files {
		p := f
		if !filepath.IsAbs(p) && workspace != "" {
			p = filepath.Join(workspace, p)
		}
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("test_files: %s does not exist (%v): name a testinfra test file in the workspace", f, err)
		}
		out[i] = p
	}
	return out, nil
}

// shown are files as messages name them: relative to the workspace when
// inside it.
func shown(workspace string, files []string) []string {
	out := make([]string, len(files))
	for i, f := range files {
		out[i] = f
		if rel, err := filepath.Rel(workspace, f); err == nil && workspace != "" && !strings.HasPrefix(rel, "..") {
			out[i] = rel
		}
	}
	return out
}

// stopMaster stops the control master the tests' ssh started, if it is
// still there.
func stopMaster(client *ssh.OpenSSHClient, control string) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	argv := append([]string{"ssh", "-F", client.Config}, strings.Fields(control)...)
	_ = exec.CommandContext(ctx, argv[0], append(argv[1:], "-O", "exit", client.Alias)...).Run()
}

// findTestinfra returns the Python to run, once it has imported testinfra
// and pytest.
func findTestinfra(ctx context.Context, python string) (string, error) {
	p, err := exec.LookPath(python)
	if err != nil {
		return "", fmt.Errorf("python: %s is not installed on this machine: install Debian's %s package (apt-get install %s), which brings /usr/bin/python3 with testinfra, or name a Python that has testinfra with python", python, DebianPackage, DebianPackage)
	}
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, p, "-c", "import testinfra, pytest")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		last := strings.TrimSpace(out.String())
		if i := strings.LastIndex(last, "\n"); i >= 0 {
			last = last[i+1:]
		}
		return "", fmt.Errorf("testinfra is not installed for %s (%s): install Debian's %s package (apt-get install %s), or name a Python that has testinfra and pytest with python", p, last, DebianPackage, DebianPackage)
	}
	return p, nil
}

// hostAlias is the name the ssh_config gives the machine, which testinfra
// shows in each test's id ("test_nginx[ssh://web]").
func hostAlias(build string) string {
	alias := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
			return r
		}
		return '-'
	}, build)
	if alias == "" {
		return "machine"
	}
	return alias
}
