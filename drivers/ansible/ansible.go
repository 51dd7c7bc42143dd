package ansible

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/cfgtool"
	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
)

//go:embed callback/imgbuild.py
var callbackPlugin []byte

// Ansible is the ansible() provisioner.
type Ansible struct {
	cfg *Config
}

// errNotInstalled says that a program is missing on this machine.
func errNotInstalled(prog, kw, pkg string) error {
	return fmt.Errorf("%s is not installed on this machine (it is not on PATH): install Debian's %s package (apt-get install %s), or name the program with %s", prog, pkg, pkg, kw)
}

// lookPath finds the program a command keyword names.
func lookPath(prog, kw string) (string, error) {
	p, err := exec.LookPath(prog)
	if err != nil {
		return "", errNotInstalled(prog, kw, "ansible-core")
	}
	return p, nil
}

// Provision implements engine.Provisioner.
func (a *Ansible) Provision(ctx context.Context, env *engine.ProvisionEnv) error {
	return cfgtool.WithTimeout(ctx, "ansible "+filepath.Base(a.cfg.PlaybookFile), a.cfg.Timeout, func(ctx context.Context) error { return a.provision(ctx, env) })
}

func (a *Ansible) provision(ctx context.Context, env *engine.ProvisionEnv) error {
	c := a.cfg
	bin, err := lookPath(c.Command, "command")
	if err != nil {
		return err
	}
	work := env.WorkDir
	if work == "" {
		work = os.TempDir()
	}
	scratch, err := os.MkdirTemp(work, "ansible-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(scratch)
	// Unix sockets (OpenSSH's control sockets, the agent) want a short
	// path.
	short, err := os.MkdirTemp("", "imgbuild-ansible-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(short)
	for _, d := range []string{"tmp", "callback_plugins", "transit"} {
		if err := os.Mkdir(filepath.Join(scratch, d), 0o700); err != nil {
			return err
		}
	}
	if err := os.Mkdir(filepath.Join(short, "cp"), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(scratch, "callback_plugins", "imgbuild.py"), callbackPlugin, 0o600); err != nil {
		return err
	}
	environ := map[string]string{
		"ANSIBLE_CALLBACK_PLUGINS":     filepath.Join(scratch, "callback_plugins"),
		"ANSIBLE_CALLBACKS_ENABLED":    "imgbuild",
		"ANSIBLE_RETRY_FILES_ENABLED":  "False",
		"ANSIBLE_LOCAL_TEMP":           filepath.Join(scratch, "tmp"),
		"ANSIBLE_SSH_CONTROL_PATH_DIR": filepath.Join(short, "cp"),
		"ANSIBLE_HOST_KEY_CHECKING":    "True",
		"ANSIBLE_PYTHON_INTERPRETER":   "auto_silent",
		"PYTHONUNBUFFERED":             "1",
	}
	if c.AnsibleCfg != "" {
		environ["ANSIBLE_CONFIG"] = c.AnsibleCfg
	}

	galaxyRoles, galaxyCollections, err := c.galaxy(ctx, env, scratch, envList(withUser(environ, c.AnsibleEnvVars)))
	if err != nil {
		return err
	}
	if p := searchPath(galaxyRoles, c.RolesPath, "~/.ansible/roles:/usr/share/ansible/roles:/etc/ansible/roles"); p != "" {
		environ["ANSIBLE_ROLES_PATH"] = p
	}
	if p := searchPath(galaxyCollections, c.CollectionsPath, "~/.ansible/collections:/usr/share/ansible/collections"); p != "" {
		environ["ANSIBLE_COLLECTIONS_PATH"] = p
	}

	t, err := a.target(ctx, env, scratch, short)
	if err != nil {
		return err
	}
	defer t.close()
	for k, v := range t.env {
		environ[k] = v
	}
	vars := map[string]any{"imgbuild_build": env.Build, "imgbuild_driver": env.Driver}
	for k, v := range t.vars {
		vars[k] = v
	}
	for k, v := range c.InventoryExtra {
		vars[k] = cfgtool.Plain(v)
	}
	inv := &inventory{host: c.HostAlias, groups: c.Groups, vars: vars}
	data, err := inv.JSON()
	if err != nil {
		return err
	}
	invFile, err := writeFile(scratch, "inventory.yml", data)
	if err != nil {
		return err
	}
	argv := []string{bin, "-i", invFile}
	if len(c.ExtraVars) > 0 {
		data, err := varsFile(c.ExtraVars)
		if err != nil {
			return fmt.Errorf("extra_vars: %w", err)
		}
		f, err := writeFile(scratch, "extra-vars.json", data)
		if err != nil {
			return err
		}
		argv = append(argv, "-e", "@"+f)
	}
	if c.Become {
		argv = append(argv, "--become")
		if c.BecomeUser != "" {
			argv = append(argv, "--become-user", c.BecomeUser)
		}
	}
	argv = append(append(argv, c.ExtraArguments...), c.PlaybookFile)
	dir := c.PlaybookDir
	if dir == "" {
		dir = filepath.Dir(c.PlaybookFile)
	}
	environ = withUser(environ, c.AnsibleEnvVars)
	name := filepath.Base(c.PlaybookFile)
	env.UI.Say("ansible: running %s against %s (%s): %s", name, c.HostAlias, t.how, shellquote.Join(argv...))
	start := time.Now()
	err = cfgtool.Attempts(ctx, env.UI, "ansible-playbook "+name, c.MaxRetries, func(ctx context.Context) error {
		r := &playbookRun{env: env, argv: argv, dir: dir, environ: environ, name: name}
		err := r.run(ctx)
		stopControlMasters(filepath.Join(short, "cp"))
		return err
	})
	if err == nil {
		env.UI.Say("ansible: %s done in %s (%s)", name, time.Since(start).Round(100*time.Millisecond), t.stats())
	}
	return err
}

// withUser adds ansible_env_vars to imgbuild's environment: the user's
// values win, except that callback plugin paths and enabled callbacks are
// joined, so that imgbuild's own callback stays on.
func withUser(base, user map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(user))
	for k, v := range base {
		out[k] = v
	}
	for k, v := range user {
		switch k {
		case "ANSIBLE_CALLBACK_PLUGINS":
			out[k] = base[k] + ":" + v
		case "ANSIBLE_CALLBACKS_ENABLED", "ANSIBLE_CALLBACK_WHITELIST":
			out["ANSIBLE_CALLBACKS_ENABLED"] = base["ANSIBLE_CALLBACKS_ENABLED"] + "," + v
		default:
			out[k] = v
		}
	}
	return out
}

// searchPath joins a galaxy install directory, the user's directories and
// Ansible's defaults into a search path; "" when there is nothing of
// imgbuild's or the user's.
func searchPath(first string, dirs []string, defaults string) string {
	var parts []string
	if first != "" {
		parts = append(parts, first)
	}
	parts = append(parts, dirs...)
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(append(parts, defaults), ":")
}

// playbookRun is one run of ansible-playbook on this machine.
type playbookRun struct {
	env     *engine.ProvisionEnv
	argv    []string
	dir     string
	environ map[string]string
	name    string
}

func (r *playbookRun) run(ctx context.Context) error {
	w := newWatch(r.env.UI, r.name)
	environ := append(envList(r.environ), "IMGBUILD_ANSIBLE_EVENTS="+w.tag)
	status, err := local.RunShell(ctx, r.dir, environ, &engine.Command{Command: shellquote.Join(r.argv...), Stdout: w.stdout, Stderr: w.stderr})
	return w.finish(status, err)
}

// stderrKept is how many lines of ansible-playbook's stderr are kept for
// its error: enough for a whole "ERROR!" block with its excerpt.
const stderrKept = 200

// watch reads one run's output: Ansible's own lines stream to the build's
// log, the callback's tagged events are gathered for the outcome.
type watch struct {
	tag    string
	name   string
	out    *outcome
	stdout *cfgtool.Lines
	stderr *cfgtool.Lines
}

func newWatch(ui *event.UI, name string) *watch {
	w := &watch{tag: newTag(), name: name, out: &outcome{}}
	w.stdout = cfgtool.NewLines(0, func(line string) {
		ev, isEvent, err := ParseEvent(w.tag, line)
		switch {
		case !isEvent:
			cfgtool.Emit(ui, "stdout", line)
		case err != nil:
			w.out.mu.Lock()
			if w.out.bad == nil {
				w.out.bad = err
			}
			w.out.mu.Unlock()
		default:
			w.out.add(ev)
			if ev.Event == "start" {
				ui.Say("ansible-core %s, playbook %s", ev.Ansible, name)
			}
		}
	})
	w.stderr = cfgtool.Stream(ui, "stderr", stderrKept)
	return w
}

// finish turns the run's exit into the provisioner's error.
func (w *watch) finish(status int, err error) error {
	w.stdout.Close()
	w.stderr.Close()
	if err != nil {
		return fmt.Errorf("running ansible-playbook %s: %w", w.name, err)
	}
	if status == 0 {
		return nil
	}
	return w.out.failure(w.name, status, w.stderr.Last())
}

// failure is the error of a run that exited with status: the failed
// tasks with their messages when the callback saw them, else Ansible's
// ERROR! block (a playbook that does not parse), else the end of stderr.
func (o *outcome) failure(name string, status int, stderr []string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.failed) > 0 || len(o.unreachable) > 0 {
		return fmt.Errorf("ansible-playbook %s failed (exit status %d): %w", name, status, &taskError{Failed: o.failed, Unreachable: o.unreachable})
	}
	if block := errorBlock(stderr); block != "" {
		err := fmt.Errorf("ansible-playbook %s failed (exit status %d), as Ansible reports it:\n%s", name, status, block)
		if o.tasks == 0 {
			// It never got to run a task: the playbook, its roles or
			// its variables are wrong, and will be wrong again.
			return cfgtool.Permanent(err)
		}
		return err
	}
	msg := fmt.Sprintf("ansible-playbook %s exited with status %d", name, status)
	if len(stderr) > 0 {
		msg += "; last lines of stderr:" + cfgtool.Indent(stderr[max(0, len(stderr)-8):])
	}
	if o.bad != nil {
		msg += fmt.Sprintf(" (and imgbuild could not read its callback's events: %v)", o.bad)
	}
	return errors.New(msg)
}

// stopControlMasters ends the OpenSSH control masters (ControlPersist) a
// run left in dir, so that none outlives the provisioner.
func stopControlMasters(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		sock := filepath.Join(dir, e.Name())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = exec.CommandContext(ctx, "ssh", "-o", "ControlPath="+sock, "-O", "exit", "imgbuild-control-master").Run()
		cancel()
	}
}
