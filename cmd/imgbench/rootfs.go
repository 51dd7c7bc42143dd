package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// rootfsBench measures the quickstart's rootfs() build as imgbuild
// processes, in a copy of examples/: cold (no checkpoint: debootstrap
// runs, and keeps one), then warm (only the provisioner's file changed:
// the checkpoint is reused). With mkosi set, it measures Debian's mkosi
// the same way beside it: a cold build that makes its incremental cache,
// then a build with only the post-installation script changed.
func rootfsBench(bin, examples string, mkosi bool) error {
	dir, err := os.MkdirTemp("", "imgbench-rootfs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if err := copyQuickstart(examples, dir); err != nil {
		return err
	}
	env := benchEnv(dir, "config", "checkpoints")
	build := func() (time.Duration, string, error) {
		return timedRun(bin, dir, env, "--only", "quickstart-base")
	}
	cold, out, err := build()
	if err != nil {
		return err
	}
	if !strings.Contains(out, "debootstrap: kept the tree as checkpoint") {
		return fmt.Errorf("the cold build kept no checkpoint:\n%s", tail(out, 20))
	}
	f, err := os.OpenFile(filepath.Join(dir, "quickstart/index.html"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	fmt.Fprintln(f, "<!-- changed -->")
	f.Close()
	warm, out, err := build()
	if err != nil {
		return err
	}
	if !strings.Contains(out, "debootstrap: reused checkpoint") {
		return fmt.Errorf("the warm build did not reuse the checkpoint:\n%s", tail(out, 20))
	}
	fmt.Printf("quickstart rootfs() build, only its provisioner's file changed: cold %s (debootstrap), warm %s (checkpoint reused): ratio %.2f\n", secs(cold), secs(warm), warm.Seconds()/cold.Seconds())
	if mkosi {
		return mkosiBench(dir)
	}
	return nil
}

// mkosiConfig is the quickstart's base as mkosi 14 builds it; a build
// script makes mkosi's two-phase flow, which is what its incremental mode
// caches. A tar: reusing a cached gpt_ext4 image fails here (mkosi's
// tune2fs -U random wants a freshly checked file system with e2fsprogs
// 1.47).
const mkosiConfig = `[Distribution]
Distribution=debian
Release=bookworm

[Output]
Format=tar
Bootable=no
OutputDirectory=out

[Packages]
Packages=systemd-sysv,udev,linux-image-amd64,openssh-server,nginx,sudo

[Host]
NspawnKeepUnit=yes
`

// mkosiBench runs mkosi -i cold (its caches removed with -ff), then with
// only mkosi.postinst changed. mkosi needs a mount namespace with a tmpfs
// /run here, and NspawnKeepUnit (systemd-nspawn asks no systemd for a
// scope: PID 1 here is not systemd).
func mkosiBench(parent string) error {
	dir := filepath.Join(parent, "mkosi")
	files := map[string]string{
		"mkosi.default":  mkosiConfig,
		"mkosi.build":    "#!/bin/sh\ntrue\n",
		"mkosi.postinst": "#!/bin/sh\necho v1 > /var/www/html/index.html\n",
	}
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o755); err != nil {
		return err
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o755); err != nil {
			return err
		}
	}
	run := func(force string) (time.Duration, error) {
		cmd := exec.Command("unshare", "-m", "sh", "-c", "mount -t tmpfs tmpfs /run && exec mkosi -i "+force+" build")
		cmd.Dir = dir
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("mkosi: %v\n%s", err, tail(string(out), 20))
		}
		return time.Since(start), nil
	}
	cold, err := run("-ff")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "mkosi.postinst"), []byte("#!/bin/sh\necho v2 > /var/www/html/index.html\n"), 0o755); err != nil {
		return err
	}
	warm, err := run("-f")
	if err != nil {
		return err
	}
	fmt.Printf("mkosi 14 (-i), the same packages, only mkosi.postinst changed: cold %s, incremental %s: ratio %.2f\n", secs(cold), secs(warm), warm.Seconds()/cold.Seconds())
	return nil
}

// copyQuickstart copies the quickstart description and its files from
// examples into dir.
func copyQuickstart(examples, dir string) error {
	for _, p := range []string{"quickstart.star", "quickstart"} {
		if out, err := exec.Command("cp", "-a", filepath.Join(examples, p), dir).CombinedOutput(); err != nil {
			return fmt.Errorf("copying the quickstart: %v: %s", err, out)
		}
	}
	return nil
}

// benchEnv is this process's environment with imgbuild's configuration
// (the fingerprint key) and checkpoint cache in directories of dir.
func benchEnv(dir, config, checkpoints string) []string {
	return append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(dir, config), "IMGBUILD_CHECKPOINTS="+filepath.Join(dir, checkpoints))
}

// timedRun runs `imgbuild run --no-color ARGS quickstart.star` in dir and
// returns its wall time and output; a failed run is an error with the
// output's tail.
func timedRun(bin, dir string, env []string, args ...string) (time.Duration, string, error) {
	cmd := exec.Command(bin, append(append([]string{"run", "--no-color"}, args...), "quickstart.star")...)
	cmd.Dir, cmd.Env = dir, env
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, "", fmt.Errorf("imgbuild run: %v\n%s", err, tail(string(out), 20))
	}
	return time.Since(start), string(out), nil
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
