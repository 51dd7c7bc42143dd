// Command imgbench measures imgbuild's performance targets and prints the
// figures (make bench runs it):
//
//   - evaluate + plan of a generated description of 1,000 builds (5
//     provisioners each, every build but the first consuming an output of
//     another), as the real `imgbuild plan` process: wall time and peak
//     resident memory (targets: 0.5 s, 64 MiB);
//   - orchestration overhead per build of 30 independent local() builds:
//     the engine's run time minus the time the same builds' driver work
//     takes when called directly, divided by 30 (target: 5 ms);
//   - the no-op re-run of 100 unchanged local() builds beside their full
//     build (target: under 1 s), and plan of 10,000 builds beside validate
//     (target: within 1.2x);
//   - with -amazon N, the no-op re-run of N unchanged amazon_ebs builds
//     against moto beside their full build (target: under 1 s, one
//     DescribeImages call per region);
//   - with -ssh-memory N,M, the resident memory per build of N (then M)
//     concurrent null() builds over SSH, beside as many OpenSSH clients
//     doing the same (target: 1.5 MB per build).
//
// The last two need moto_server and sshd, and run the Go tests that hold
// them (drivers/amazon/bench, drivers/ssh/bench) with the go command, since
// those counterparts are started by the suite's test harnesses.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/imgbuild/imgbuild/drivers/all"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/render"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
	"github.com/imgbuild/imgbuild/starlark/description"
)

func main() {
	bin := flag.String("imgbuild", "bin/imgbuild", "the imgbuild binary to measure")
	builds := flag.Int("builds", 1000, "builds in the generated description")
	local := flag.Int("local", 30, "independent local() builds for the overhead measurement")
	runs := flag.Int("runs", 7, "repetitions of each measurement")
	noop := flag.Int("noop", 100, "local() builds for the no-op re-run measurement")
	planBuilds := flag.Int("plan-builds", 10000, "builds for plan against validate")
	rootfs := flag.Bool("rootfs", false, "only measure the quickstart's rootfs() build cold and with its checkpoint (needs root and debootstrap; minutes)")
	mkosi := flag.Bool("mkosi", false, "with -rootfs, measure mkosi -i beside it")
	examples := flag.String("examples", "examples", "the examples directory (for -rootfs and -quickstart)")
	quickstart := flag.Bool("quickstart", false, "only measure the whole quickstart: cold, re-run with nothing changed, and with only its qemu stage changed (needs root, debootstrap and qemu; a cold run takes 10-30 minutes under TCG)")
	quickstartDir := flag.String("quickstart-dir", "", "with -quickstart, a workspace to keep and reuse: one that holds a built quickstart leaves the cold run out")
	amazon := flag.Int("amazon", 0, "amazon_ebs builds on moto for their no-op re-run (0 leaves it out; needs moto_server and sshd)")
	sshMemory := flag.String("ssh-memory", "", "comma-separated counts of concurrent null() SSH builds whose memory per build is measured beside OpenSSH (empty leaves it out; needs sshd)")
	only := flag.String("only", "", "comma-separated measurements to run, of plan, overhead, incremental, amazon, ssh-memory (empty: all that are asked for)")
	flag.Parse()
	// The measurements run imgbuild from directories of their own.
	if abs, err := filepath.Abs(*bin); err == nil {
		*bin = abs
	}
	if *rootfs {
		if err := rootfsBench(*bin, *examples, *mkosi); err != nil {
			fmt.Fprintln(os.Stderr, "imgbench:", err)
			os.Exit(1)
		}
		return
	}
	if *quickstart {
		if err := quickstartBench(*bin, *examples, *quickstartDir); err != nil {
			fmt.Fprintln(os.Stderr, "imgbench:", err)
			os.Exit(1)
		}
		return
	}
	want := func(name string) bool { return *only == "" || slices.Contains(strings.Split(*only, ","), name) }
	measurements := []struct {
		name  string
		asked bool
		run   func() error
	}{
		{"plan", true, func() error { return planBench(*bin, *builds, *runs) }},
		{"overhead", true, func() error { return overheadBench(*local, *runs) }},
		{"incremental", true, func() error { return incrementalBench(*bin, *noop, *planBuilds) }},
		{"amazon", *amazon > 0, func() error { return amazonNoopBench(*bin, *amazon) }},
		{"ssh-memory", *sshMemory != "", func() error { return sshMemoryBench(*bin, *sshMemory) }},
	}
	for _, m := range measurements {
		if !m.asked || !want(m.name) {
			continue
		}
		if err := m.run(); err != nil {
			fmt.Fprintln(os.Stderr, "imgbench:", err)
			os.Exit(1)
		}
	}
}

// generate writes a description of n builds with 5 provisioners each, in
// a new temporary directory that the caller removes; build i consumes an
// output of build i/2, so the graph is a wide tree.
func generate(n int) (dir, file string, err error) {
	dir, err = os.MkdirTemp("", "imgbench-plan-")
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	b.WriteString("version = var(\"version\", default = \"dev\")\n\n")
	for i := 0; i < n; i++ {
		env := `{"N": "` + fmt.Sprint(i) + `"}`
		if i > 0 {
			env = fmt.Sprintf(`{"N": "%d", "FROM": b%d.id}`, i, i/2)
		}
		fmt.Fprintf(&b, `b%d = local(
    name = "build-%d",
    env = %s,
    provisioners = [
        shell(inline = ["echo %d", "mkdir -p etc"], env = {"V": version}),
        file(content = "build %d " + version, destination = "/etc/release"),
        shell(inline = ["test -s etc/release"], valid_exit_codes = [0, 1], timeout = "1m"),
        shell_local(command = "true"),
        file(content = "x", destination = "/etc/marker-%d", mode = 0o600),
    ],
)
`, i, i, env, i, i, i)
	}
	file = filepath.Join(dir, "images.star")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", "", err
	}
	return dir, file, nil
}

func planBench(bin string, n, runs int) error {
	dir, file, err := generate(n)
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, _ := os.Stat(file)
	var walls []time.Duration
	var peak int64
	for i := 0; i < runs; i++ {
		cmd := exec.Command(bin, "plan", file)
		cmd.Stdout = io.Discard
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s plan: %v\n%s", bin, err, stderr.String())
		}
		walls = append(walls, time.Since(start))
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			peak = max(peak, ru.Maxrss) // KiB on Linux
		}
	}
	sort.Slice(walls, func(i, j int) bool { return walls[i] < walls[j] })
	fmt.Printf("evaluate + plan, %d builds x 5 provisioners (%d KiB of Starlark), `imgbuild plan` as a process, %d runs:\n", n, st.Size()/1024, runs)
	fmt.Printf("  wall time: min %s, median %s (target < 500ms)\n", ms(walls[0]), ms(walls[len(walls)/2]))
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("  (load average while measuring: %s)\n", strings.Join(strings.Fields(string(load))[:3], " "))
	}
	fmt.Printf("  peak RSS:  %.1f MiB (target < 64 MiB)\n", float64(peak)/1024)
	return nil
}

func overheadBench(n, runs int) error {
	reg := engine.NewRegistry()
	all.Register(reg)
	var engineTimes, directTimes []time.Duration
	for i := 0; i < runs; i++ {
		e, d, err := overheadOnce(reg, n)
		if err != nil {
			return err
		}
		engineTimes, directTimes = append(engineTimes, e), append(directTimes, d)
	}
	sort.Slice(engineTimes, func(i, j int) bool { return engineTimes[i] < engineTimes[j] })
	sort.Slice(directTimes, func(i, j int) bool { return directTimes[i] < directTimes[j] })
	mid := len(engineTimes) / 2
	fmt.Printf("%d independent local() builds, one shell provisioner each, --parallel 1, %d runs (min / median):\n", n, runs)
	fmt.Printf("  through the engine (graph, scheduler, events, JSON renderer, log files): %s / %s\n", ms(engineTimes[0]), ms(engineTimes[mid]))
	fmt.Printf("  the same driver work called directly:                                    %s / %s\n", ms(directTimes[0]), ms(directTimes[mid]))
	fmt.Printf("  orchestration overhead per build: %s / %s (target < 5ms)\n",
		ms((engineTimes[0]-directTimes[0])/time.Duration(n)), ms((engineTimes[mid]-directTimes[mid])/time.Duration(n)))
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("  (load average while measuring: %s)\n", strings.Join(strings.Fields(string(load))[:3], " "))
	}
	return nil
}

// overheadOnce runs n local builds through the engine, then the same
// builds' Build functions directly, in fresh workspaces.
func overheadOnce(reg *engine.Registry, n int) (viaEngine, direct time.Duration, err error) {
	dir, err := os.MkdirTemp("", "imgbench-local-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "local(name = \"b%d\", provisioners = [shell(inline = [\"true\"])])\n", i)
	}
	file := filepath.Join(dir, "images.star")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		return 0, 0, err
	}
	d, err := description.Load(description.Options{File: file, Registry: reg})
	if err != nil {
		return 0, 0, err
	}
	wd, _ := os.Getwd()
	defer os.Chdir(wd)
	if err := os.Chdir(dir); err != nil {
		return 0, 0, err
	}
	tmp := filepath.Join(dir, ".imgbuild", "tmp")
	os.MkdirAll(tmp, 0o755)
	logs := render.NewLogs(render.LogDir(dir, "bench"))
	bus := event.NewBus(render.NewJSON(io.Discard), logs)
	start := time.Now()
	sum := engine.Run(context.Background(), d.Graph, reg, bus, engine.RunOptions{Parallel: 1, Workspace: dir, TempDir: tmp})
	viaEngine = time.Since(start)
	logs.Close()
	if !sum.OK() {
		return 0, 0, fmt.Errorf("engine run failed: %v", sum.Results[0].Err)
	}
	// The same work, driver only: decode, scratch dir, Build.
	os.RemoveAll(filepath.Join(dir, "output"))
	def := reg.Builders["local"]
	quiet := event.NewBus()
	start = time.Now()
	for _, node := range d.Graph.Nodes {
		cfg := def.Schema.New()
		if _, err := def.Schema.Decode(node.Settings, cfg, schema.Options{}); err != nil {
			return 0, 0, err
		}
		work, _ := os.MkdirTemp(tmp, "direct-")
		ui := event.NewUI(quiet, node.Name, "local")
		job := &engine.Job{Name: node.Name, Driver: "local", Config: cfg, UI: ui, Steps: &step.Runner{UI: ui}, WorkDir: work, Workspace: dir}
		if err := job.AddProvisioners(reg, node.Provisioners, nil); err != nil {
			return 0, 0, err
		}
		if _, err := def.Build(context.Background(), job); err != nil {
			return 0, 0, err
		}
		os.RemoveAll(work)
	}
	direct = time.Since(start)
	return viaEngine, direct, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }
