package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// quickstartBench measures the whole quickstart (rootfs() then qemu()) as
// imgbuild processes in a workspace of its own: a cold run, a re-run with
// nothing changed (both builds must be up to date), then a run with only
// the qemu stage's provisioner changed (the rootfs base must stay up to
// date and only qemu() rebuild). dir is the workspace: an empty string
// makes a fresh copy of examples/ (and removes it afterwards); an existing
// directory that already holds a built quickstart is reused, so the cold
// run is left out and the figures come in a quarter of an hour.
func quickstartBench(bin, examples, dir string) error {
	if dir == "" {
		d, err := os.MkdirTemp("", "imgbench-quickstart-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	if _, err := os.Stat(filepath.Join(dir, "quickstart.star")); err != nil {
		if err := copyQuickstart(examples, dir); err != nil {
			return err
		}
	}
	env := benchEnv(dir, ".bench-config", ".bench-checkpoints")
	run := func() (time.Duration, string, error) { return timedRun(bin, dir, env) }
	// The first run is the cold one in a new workspace; in a kept one it
	// brings the builds up to date (a no-op when nothing has changed since).
	_, built := os.Stat(filepath.Join(dir, ".imgbuild", "state.json"))
	first, _, err := run()
	if err != nil {
		return err
	}
	noop, out, err := run()
	if err != nil {
		return err
	}
	for _, b := range []string{"quickstart-base", "quickstart"} {
		if !upToDate(out, b) {
			return fmt.Errorf("the re-run with nothing changed rebuilt %s:\n%s", b, tail(out, 20))
		}
	}
	// The release text is written by the qemu() stage's provisioner only.
	star := filepath.Join(dir, "quickstart.star")
	text, err := os.ReadFile(star)
	if err != nil {
		return err
	}
	changed := strings.Replace(string(text), `release = "quickstart image, built by imgbuild`, fmt.Sprintf(`release = "quickstart image, built by imgbuild (bench %d)`, time.Now().Unix()), 1)
	if changed == string(text) {
		return fmt.Errorf("%s has no release line to change: the benchmark changes the qemu() stage's provisioner through it", star)
	}
	if err := os.WriteFile(star, []byte(changed), 0o644); err != nil {
		return err
	}
	qemuOnly, out, err := run()
	if err != nil {
		return err
	}
	if !upToDate(out, "quickstart-base") || upToDate(out, "quickstart") {
		return fmt.Errorf("with only the qemu stage changed, the rootfs base must be up to date and qemu() rebuilt:\n%s", tail(out, 20))
	}
	if built != nil {
		fmt.Printf("quickstart cold: %s\n", secs(first))
	} else {
		fmt.Printf("quickstart cold: left out (the workspace %s was built before; bringing it up to date took %s)\n", dir, secs(first))
	}
	fmt.Printf("quickstart re-run, nothing changed: %s (both builds up to date)\n", secs(noop))
	fmt.Printf("quickstart, only the qemu stage's provisioner changed: %s (rootfs up to date, only qemu() rebuilt)\n", secs(qemuOnly))
	return nil
}

// upToDate says whether a run's output marks build name up to date.
func upToDate(out, name string) bool {
	for _, line := range strings.Split(out, "\n") {
		if f := strings.SplitN(line, "|", 2); len(f) == 2 && strings.TrimSpace(f[0]) == name && strings.HasPrefix(strings.TrimSpace(f[1]), "up to date") {
			return true
		}
	}
	return false
}
