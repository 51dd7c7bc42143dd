package bench

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// TestMemoryPerConcurrentBuild measures the memory of concurrent SSH
// builds, side by side with OpenSSH's client, against one private sshd.
// It is skipped unless IMGBUILD_BENCH=1, and needs the imgbuild binary to
// measure in IMGBUILD_BENCH_BIN (imgbench -ssh-memory runs it so).
//
// Each build connects, runs `echo hello` and uploads a 10 MiB file, as
// null() builds with the shell and file provisioners, N at once
// (IMGBUILD_BENCH_MEMORY_N, default "30,100"), in one `imgbuild run
// --parallel N` process. Its growth per build is the peak resident memory
// of that process less that of the same run with one build, divided by
// N-1. OpenSSH's figure is the same work as N concurrent `ssh` client
// processes (`echo hello && cat > dst` with the file on stdin): the sum of
// their peak resident memory, divided by N.
func TestMemoryPerConcurrentBuild(t *testing.T) {
	testkit.OptIn(t, "IMGBUILD_BENCH", "a benchmark (imgbench -ssh-memory runs it)")
	bin := os.Getenv("IMGBUILD_BENCH_BIN")
	if bin == "" {
		t.Fatal("IMGBUILD_BENCH_BIN is unset: set it to the imgbuild binary to measure (make build makes bin/imgbuild)")
	}
	if _, err := exec.LookPath("ssh"); err != nil {
		t.Fatal("ssh not found: install openssh-client")
	}
	var ns []int
	for _, f := range strings.Split(envString("IMGBUILD_BENCH_MEMORY_N", "30,100"), ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 2 {
			t.Fatalf("IMGBUILD_BENCH_MEMORY_N=%q: want a comma-separated list of build counts, each at least 2", os.Getenv("IMGBUILD_BENCH_MEMORY_N"))
		}
		ns = append(ns, n)
	}
	reps := envInt("IMGBUILD_BENCH_REPS", 3)

	srv := sshtest.Start(t, sshtest.WithConfig("Ciphers "+cipher, "KexAlgorithms "+kex), sshtest.WithLogLevel("ERROR"))
	dir := t.TempDir()
	payload := filepath.Join(dir, "10mib.bin")
	writeRandom(t, payload, 10<<20, 3)

	// imgbuild: the peak RSS of one run of n builds, median of reps.
	run := 0
	imgbuildPeak := func(n int) int64 {
		var peaks []int64
		for range reps {
			run++
			ws := filepath.Join(dir, fmt.Sprintf("run-%d", run))
			if err := os.MkdirAll(ws, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(payload, filepath.Join(ws, "payload.bin")); err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for i := range n {
				fmt.Fprintf(&b, `null(name = "b%d", ssh_host = %q, ssh_port = %d, ssh_username = %q,
    ssh_private_key_file = %q, ssh_host_key = %q,
    provisioners = [shell(inline = ["echo hello"]), file(source = "payload.bin", destination = %q)])
`, i, srv.Host, srv.Port, srv.User, srv.ClientKeyFile, srv.HostKeyFingerprint, filepath.Join(ws, fmt.Sprintf("uploaded-%d.bin", i)))
			}
			if err := os.WriteFile(filepath.Join(ws, "images.star"), []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, "run", "--no-color", "--parallel", strconv.Itoa(n), "images.star")
			cmd.Dir = ws
			cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+filepath.Join(dir, "config"))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s run of %d builds: %v\n%s", bin, n, err, out)
			}
			peaks = append(peaks, maxRSS(cmd))
			os.RemoveAll(ws)
		}
		return median(peaks)
	}

	common := append(opensshOptions(srv), "-p", strconv.Itoa(srv.Port), srv.User+"@"+srv.Host)
	// OpenSSH: the summed peak RSS of n concurrent ssh processes, median
	// of reps.
	opensshSum := func(n int) int64 {
		var sums []int64
		for range reps {
			var mu sync.Mutex
			var sum int64
			var wg sync.WaitGroup
			errs := make(chan error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					dst := filepath.Join(dir, fmt.Sprintf("ssh-%d.bin", i))
					defer os.Remove(dst)
					f, err := os.Open(payload)
					if err != nil {
						errs <- err
						return
					}
					defer f.Close()
					cmd := exec.Command("ssh", append(common, "echo hello && cat > "+dst)...)
					cmd.Stdin = f
					if out, err := cmd.CombinedOutput(); err != nil {
						errs <- fmt.Errorf("ssh: %v: %s", err, out)
						return
					}
					mu.Lock()
					sum += maxRSS(cmd)
					mu.Unlock()
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			sums = append(sums, sum)
		}
		return median(sums)
	}

	fmt.Printf("%s on %s; each build: connect, echo hello, upload 10 MiB; medians of %d runs\n", opensshVersion(), srv.Addr(), reps)
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average at the start: %s\n", strings.Join(strings.Fields(string(load))[:3], " "))
	}
	one := imgbuildPeak(1)
	fmt.Printf("imgbuild run, 1 build: peak RSS %.1f MiB\n", mib(one))
	fmt.Printf("%-8s %-22s %-24s %-26s %s\n", "builds", "imgbuild peak RSS", "imgbuild growth/build", "OpenSSH ssh RSS, summed", "OpenSSH per build")
	for _, n := range ns {
		peak := imgbuildPeak(n)
		theirs := opensshSum(n)
		growth := float64(peak-one) / float64(n-1)
		fmt.Printf("%-8d %-22s %-24s %-26s %s\n", n, fmt.Sprintf("%.1f MiB", mib(peak)), fmt.Sprintf("%.2f MB (target <= 1.5)", growth*1024/1e6),
			fmt.Sprintf("%.1f MiB", mib(theirs)), fmt.Sprintf("%.2f MB", float64(theirs)*1024/1e6/float64(n)))
	}
	if load, err := os.ReadFile("/proc/loadavg"); err == nil {
		fmt.Printf("load average at the end: %s\n", strings.Join(strings.Fields(string(load))[:3], " "))
	}
}

// maxRSS is a finished command's peak resident memory, in KiB.
func maxRSS(cmd *exec.Cmd) int64 {
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}

func median(xs []int64) int64 {
	sort.Slice(xs, func(i, j int) bool { return xs[i] < xs[j] })
	return xs[len(xs)/2]
}

func mib(kib int64) float64 { return float64(kib) / 1024 }

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
