package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// incrementalBench measures, side by side in one run: the full build of n
// independent local() builds, then the no-op re-run of the same
// description (every build up to date: inputs fingerprinted, artifacts
// checked against their sha256, nothing built), as real imgbuild
// processes; and plan against validate for the generated description of
// planBuilds builds (plan also reads state and fingerprints every build).
func incrementalBench(bin string, n, planBuilds int) error {
	dir, err := os.MkdirTemp("", "imgbench-incremental-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "local(name = \"b%d\", provisioners = [shell(inline = [\"mkdir -p etc\", \"echo %d > etc/n\"])])\n", i, i)
	}
	if err := os.WriteFile(filepath.Join(dir, "images.star"), []byte(b.String()), 0o644); err != nil {
		return err
	}
	env := append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
	timed := func(args ...string) (time.Duration, error) {
		cmd := exec.Command(bin, args...)
		cmd.Dir, cmd.Env = dir, env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("imgbuild %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return time.Since(start), nil
	}
	full, err := timed("run", "--no-color", "images.star")
	if err != nil {
		return err
	}
	noop, err := timed("run", "--no-color", "images.star")
	if err != nil {
		return err
	}
	fmt.Printf("%d local() builds, `imgbuild run` as a process:\n", n)
	fmt.Printf("  full build: %s; no-op re-run (all up to date): %s (target < 1s); ratio %.2f\n", ms(full), ms(noop), float64(noop)/float64(full))

	pdir, file, err := generate(planBuilds)
	if err != nil {
		return err
	}
	defer os.RemoveAll(pdir)
	dir = pdir
	validate, err := timed("validate", file)
	if err != nil {
		return err
	}
	plan, err := timed("plan", file)
	if err != nil {
		return err
	}
	fmt.Printf("%d builds: validate %s, plan (with state and fingerprints) %s: %.2fx (target <= 1.2x)\n", planBuilds, ms(validate), ms(plan), float64(plan)/float64(validate))
	return nil
}
