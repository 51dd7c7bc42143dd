package rootfs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/imgbuild/imgbuild/drivers/chroot"
	"github.com/imgbuild/imgbuild/drivers/rootfs/checkpoint"
	"github.com/imgbuild/imgbuild/engine/event"
)

// stepDebootstrap installs the base system into a tree in the build's
// scratch directory, with debootstrap run in private namespaces, its
// downloads kept in the package cache. With checkpoint = True it copies
// the tree from the checkpoint cache instead when it holds one of the same
// key, and keeps what debootstrap made there. Its cleanup removes the
// tree, unless something is mounted in it.
type stepDebootstrap struct {
	ui          *event.UI
	cfg         *Config
	workDir     string
	mirror      *stepCheckMirror  // the mirror, the suite's codename and Release
	cache       *stepLockCache    // the package cache, if any
	checkpoints *checkpoint.Cache // nil when checkpoint = False

	// outputs
	tree string // the root file system tree, absolute
}

// Name implements step.Step.
func (s *stepDebootstrap) Name() string { return "debootstrap" }

// Run implements step.Step.
func (s *stepDebootstrap) Run(ctx context.Context) error {
	tree := filepath.Join(s.workDir, "rootfs")
	var key checkpoint.Key
	if s.checkpoints != nil {
		var err error
		if key, err = checkpointKey(s.cfg, s.mirror.mirror, s.mirror.codename); err != nil {
			return err
		}
		reused, err := restoreCheckpoint(ctx, s.ui, s.checkpoints, key, s.mirror.release, tree)
		if reused {
			s.tree = tree
		}
		if reused || err != nil {
			return err
		}
	}
	s.tree = tree
	if err := os.Mkdir(s.tree, 0o755); err != nil {
		return fmt.Errorf("creating the tree: %w", err)
	}
	if err := s.debootstrap(ctx); err != nil {
		return err
	}
	if s.checkpoints != nil {
		saveCheckpoint(ctx, s.ui, s.checkpoints, key, s.mirror.release, s.tree)
	}
	return nil
}

// debootstrap runs debootstrap into the tree.
func (s *stepDebootstrap) debootstrap(ctx context.Context) error {
	args := s.args()
	s.ui.Say("running %s", strings.Join(args, " "))
	stdout, stderr := s.ui.Lines("stdout"), s.ui.Lines("stderr")
	last := &tailWriter{n: 8}
	status, err := chroot.RunIsolated(ctx, args, hostEnv(), "/", io.MultiWriter(stdout, last), io.MultiWriter(stderr, last))
	stdout.Close()
	stderr.Close()
	if err != nil {
		return err
	}
	if status != 0 {
		msg := fmt.Sprintf("debootstrap failed (exit status %d)", status)
		if log := lastLinesOf(filepath.Join(s.tree, "debootstrap/debootstrap.log"), 8); log != "" {
			msg += "; the end of its log:\n" + log
		} else if l := last.String(); l != "" {
			msg += ":\n" + l
		}
		return errors.New(msg)
	}
	// debootstrap copies this machine's resolv.conf into the tree: it
	// must not ship in the image.
	removeHostResolvConf(s.tree)
	return nil
}

// args is debootstrap's command line.
func (s *stepDebootstrap) args() []string {
	c := s.cfg
	args := []string{"debootstrap"}
	if c.Variant != "default" {
		args = append(args, "--variant="+c.Variant)
	}
	args = append(args, "--components="+strings.Join(c.Components, ","))
	if len(c.Packages) > 0 {
		args = append(args, "--include="+strings.Join(c.Packages, ","))
	}
	if s.cache.dir != "" {
		args = append(args, "--cache-dir="+filepath.Join(s.cache.dir, "debootstrap"))
	}
	args = append(args, c.Suite, s.tree, s.mirror.mirror)
	if !hasScript(c.Suite) && !hasScript(s.mirror.codename) {
		// A release newer than this debootstrap: its suites are made
		// like unstable's.
		s.ui.Warn("this machine's debootstrap does not know %q: installing it with the script for sid (update debootstrap if this fails)", c.Suite)
		args = append(args, filepath.Join(debootstrapScripts, "sid"))
	}
	return args
}

// Cleanup removes the tree.
func (s *stepDebootstrap) Cleanup(ctx context.Context, failed bool) error {
	if s.tree == "" {
		return nil
	}
	// Commands mount only in namespaces of their own; should anything be
	// mounted here, removing the tree would remove what is mounted.
	if m, err := chroot.MountsUnder(s.tree); err != nil {
		return err
	} else if len(m) > 0 {
		return fmt.Errorf("not removing %s: %s is mounted in it (unmount it, then remove the tree)", s.tree, strings.Join(m, ", "))
	}
	if err := os.RemoveAll(s.tree); err != nil {
		return err
	}
	s.tree = ""
	return nil
}

// Leftovers implements step.Leaver.
func (s *stepDebootstrap) Leftovers() []string { return []string{"root file system tree " + s.tree} }

func hasScript(suite string) bool {
	if suite == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(debootstrapScripts, suite))
	return err == nil
}

// hostEnv is the environment of programs run on this machine: a fixed
// PATH and locale, and the proxy settings of imgbuild's own.
func hostEnv() []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive",
		"HOME=/root",
	}
	for _, k := range []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// removeHostResolvConf removes the tree's /etc/resolv.conf when it is a
// copy of this machine's.
func removeHostResolvConf(tree string) {
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		return
	}
	p := filepath.Join(tree, "etc/resolv.conf")
	if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
		if got, _ := os.ReadFile(p); bytes.Equal(got, host) {
			os.Remove(p)
		}
	}
}

// tailWriter keeps the last n lines written to it.
type tailWriter struct {
	n     int
	lines []string
	part  []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.part[:i]))
		if len(t.lines) > t.n {
			t.lines = t.lines[1:]
		}
		t.part = t.part[i+1:]
	}
	return len(p), nil
}

func (t *tailWriter) String() string { return strings.Join(t.lines, "\n") }

// lastLinesOf returns the last n lines of a file, "" when unreadable.
func lastLinesOf(p string, n int) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return lastLines(string(data), n)
}
