package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/all"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/drivers/ssh/sshtest"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/event"
	"github.com/imgbuild/imgbuild/engine/testkit"
	"github.com/imgbuild/imgbuild/starlark/description"
)

// The sshd and OpenSSH's clients are held to one cipher and one key
// exchange, the ones both sides would pick on a modern machine, so that
// only the clients differ.
const (
	cipher = "aes128-gcm@openssh.com"
	kex    = "curve25519-sha256"
)

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// contender is one way of doing a scenario's work.
type contender struct {
	name string
	run  func() error
}

// result is a contender's medians over its runs: wall time, and processor
// time on the client side (this process, or OpenSSH's client processes) and
// on the server side (sshd).
type result struct {
	name           string
	median         time.Duration
	client, server time.Duration
}

// clientCPU is the processor time of this process and of its children that
// ended (OpenSSH's clients; sshd is counted apart, in server).
func clientCPU() time.Duration {
	var self, kids syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	_ = syscall.Getrusage(syscall.RUSAGE_CHILDREN, &kids)
	return time.Duration(self.Utime.Nano() + self.Stime.Nano() + kids.Utime.Nano() + kids.Stime.Nano())
}

// measure runs every contender reps times, interleaved so that noise from
// the (shared) machine falls on all of them, after one untimed warm-up.
func measure(t *testing.T, srv *sshtest.Server, reps int, cs ...contender) []result {
	t.Helper()
	type sample struct{ wall, client, server time.Duration }
	samples := make([][]sample, len(cs))
	for rep := -1; rep < reps; rep++ {
		for i, c := range cs {
			c0, s0 := clientCPU(), srv.CPU()
			start := time.Now()
			if err := c.run(); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			wall := time.Since(start)
			// Let sshd reap the connection, so its time is counted.
			testkit.Eventually(t, "sshd to reap the connections of "+c.name, srv.Reaped)
			if rep >= 0 {
				samples[i] = append(samples[i], sample{wall, clientCPU() - c0, srv.CPU() - s0})
			}
		}
	}
	median := func(ss []sample, f func(sample) time.Duration) time.Duration {
		ds := make([]time.Duration, len(ss))
		for i, s := range ss {
			ds[i] = f(s)
		}
		sort.Slice(ds, func(a, b int) bool { return ds[a] < ds[b] })
		return ds[len(ds)/2]
	}
	out := make([]result, len(cs))
	for i, ss := range samples {
		out[i] = result{name: cs[i].name,
			median: median(ss, func(s sample) time.Duration { return s.wall }),
			client: median(ss, func(s sample) time.Duration { return s.client }),
			server: median(ss, func(s sample) time.Duration { return s.server }),
		}
	}
	return out
}

// table collects the report.
type table struct {
	rows []string
}

func (tb *table) add(scenario string, rs []result, bytes int64) {
	ours := rs[0].median
	for i, r := range rs {
		speed := ""
		if bytes > 0 {
			speed = fmt.Sprintf("%.1f MB/s", float64(bytes)/r.median.Seconds()/1e6)
		}
		ratio := ""
		if i > 0 {
			// Above 1: imgbuild is faster.
			ratio = fmt.Sprintf("%.2fx", r.median.Seconds()/ours.Seconds())
		}
		name := scenario
		if i > 0 {
			name = ""
		}
		tb.rows = append(tb.rows, fmt.Sprintf("%-34s %-26s %10s %13s %8s %10s %10s", name, r.name, r.median.Round(100*time.Microsecond), speed, ratio,
			r.client.Round(time.Millisecond), r.server.Round(10*time.Millisecond)))
	}
}

func (tb *table) print() {
	fmt.Printf("\n%-34s %-26s %10s %13s %8s %10s %10s\n", "scenario", "client", "median", "throughput", "ratio", "client CPU", "sshd CPU")
	fmt.Println(strings.Repeat("-", 118))
	for _, r := range tb.rows {
		fmt.Println(r)
	}
	fmt.Println("ratio = OpenSSH's median time / imgbuild's: above 1.00x, imgbuild is faster")
	fmt.Println("CPU = median processor time of one run: the client's (this process, or OpenSSH's processes) and sshd's")
}

// TestCompareWithOpenSSH runs every scenario with the communicator and with
// OpenSSH's clients against the same sshd and prints a table of medians
// and ratios. It is skipped unless IMGBUILD_BENCH=1 (see run.sh).
//
// Scenarios: connect and run `true` (vs ssh host true); upload one large
// file (vs sftp -b put, scp, scp -O) and download it (vs sftp -b get, scp);
// upload a tree of many small files (vs scp -r, scp -O -r); and the
// build: connect, echo, upload 10 MiB, alone and 30 at once, as full
// null() builds with the shell and file provisioners run by the engine and
// as the communicator alone (vs ssh + scp).
func TestCompareWithOpenSSH(t *testing.T) {
	testkit.OptIn(t, "IMGBUILD_BENCH", "a benchmark (drivers/ssh/bench/run.sh runs it)")
	for _, tool := range []string{"ssh", "sftp", "scp"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: install openssh-client", tool)
		}
	}
	mib := envInt("IMGBUILD_BENCH_MIB", 512)
	only := os.Getenv("IMGBUILD_BENCH_ONLY") // "connect", "upload", "download", "tree", "build"; empty: all
	want := func(s string) bool { return only == "" || strings.Contains(only, s) }
	files := envInt("IMGBUILD_BENCH_FILES", 1000)
	reps := envInt("IMGBUILD_BENCH_REPS", 7) // for the large files

	srv := sshtest.Start(t, sshtest.WithConfig("Ciphers "+cipher, "KexAlgorithms "+kex))
	opts := srv.Options()
	opts.Timeout = 30 * time.Second
	target := srv.User + "@" + srv.Host
	common := opensshOptions(srv)
	sshCmd := func(args ...string) error {
		return runTool("ssh", append(append(append([]string{}, common...), "-p", strconv.Itoa(srv.Port), target), args...)...)
	}
	scpRaw := func(extra []string, src, dst string) error {
		args := append(append(append([]string{}, common...), "-q", "-P", strconv.Itoa(srv.Port)), extra...)
		return runTool("scp", append(args, src, dst)...)
	}
	scpCmd := func(extra ...string) func(src, dst string) error {
		return func(src, dst string) error { return scpRaw(extra, src, target+":"+dst) }
	}
	scpFrom := func(extra ...string) func(src, dst string) error {
		return func(src, dst string) error { return scpRaw(extra, target+":"+src, dst) }
	}
	sftpBatch := func(command string) error {
		batch := filepath.Join(t.TempDir(), "batch")
		if err := os.WriteFile(batch, []byte(command+"\n"), 0o600); err != nil {
			return err
		}
		return runTool("sftp", append(append(append([]string{}, common...), "-q", "-b", batch, "-P", strconv.Itoa(srv.Port)), target)...)
	}
	sftpPut := func(src, dst string) error { return sftpBatch(fmt.Sprintf("put %s %s", src, dst)) }
	sftpGet := func(src, dst string) error { return sftpBatch(fmt.Sprintf("get %s %s", src, dst)) }
	// connected is a contender that connects, does use's work and closes
	// the connection.
	connected := func(use func(c *ssh.Communicator) error) func() error {
		return func() error {
			c, err := ssh.Connect(context.Background(), ssh.Config{Options: opts})
			if err != nil {
				return err
			}
			defer c.Close()
			return use(c)
		}
	}

	fmt.Printf("%s on %s, cipher %s, kex %s, ed25519 keys; %d cores shared with other work\n",
		opensshVersion(), srv.Addr(), cipher, kex, runtime.NumCPU())
	var tb table
	ctx := context.Background()

	// Connect and run true.
	if want("connect") {
		tb.add("connect + true", measure(t, srv, 20,
			contender{"imgbuild", connected(func(c *ssh.Communicator) error {
				_, err := c.Run(ctx, &engine.Command{Command: "true"})
				return err
			})},
			contender{"ssh host true", func() error { return sshCmd("true") }},
		), 0)
	}

	dir := t.TempDir()
	if want("upload") {
		// One large file.
		big := filepath.Join(dir, "big.bin")
		size := int64(mib) << 20
		writeRandom(t, big, size, 1)
		dst := filepath.Join(dir, "uploaded.bin")
		check := checkSize(dst, size, "uploaded")
		tb.add(fmt.Sprintf("upload %d MiB", mib), measure(t, srv, reps,
			contender{"imgbuild", connected(func(c *ssh.Communicator) error {
				f, err := os.Open(big)
				if err != nil {
					return err
				}
				defer f.Close()
				return check(c.Upload(ctx, dst, f, engine.Transfer{Size: size, Mode: 0o644}))
			})},
			contender{"sftp -b (put)", func() error { return check(sftpPut(big, dst)) }},
			contender{"scp (SFTP protocol)", func() error { return check(scpCmd()(big, dst)) }},
			contender{"scp -O (legacy protocol)", func() error { return check(scpCmd("-O")(big, dst)) }},
		), size)
	}

	if want("download") {
		big := filepath.Join(dir, "big.bin")
		size := int64(mib) << 20
		if _, err := os.Stat(big); err != nil {
			writeRandom(t, big, size, 1)
		}
		dst := filepath.Join(dir, "downloaded.bin")
		check := checkSize(dst, size, "downloaded")
		tb.add(fmt.Sprintf("download %d MiB", mib), measure(t, srv, reps,
			contender{"imgbuild", connected(func(c *ssh.Communicator) error {
				f, err := os.Create(dst)
				if err != nil {
					return err
				}
				err = c.Download(ctx, big, f, engine.Transfer{})
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				return check(err)
			})},
			contender{"sftp -b (get)", func() error { return check(sftpGet(big, dst)) }},
			contender{"scp (SFTP protocol)", func() error { return check(scpFrom()(big, dst)) }},
			contender{"scp -O (legacy protocol)", func() error { return check(scpFrom("-O")(big, dst)) }},
		), size)
	}

	if want("tree") {
		// A tree of small files.
		tree := filepath.Join(dir, "tree")
		treeBytes := writeTree(t, tree, files)
		treeDst := filepath.Join(dir, "tree-uploaded")
		checkTree := func(err error) error {
			if err != nil {
				return err
			}
			n := 0
			filepath.WalkDir(treeDst, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.Type().IsRegular() {
					n++
				}
				return nil
			})
			if n != files {
				return fmt.Errorf("uploaded tree holds %d files; want %d", n, files)
			}
			return os.RemoveAll(treeDst)
		}
		tb.add(fmt.Sprintf("upload a tree of %d files", files), measure(t, srv, 5,
			contender{"imgbuild", connected(func(c *ssh.Communicator) error {
				return checkTree(c.UploadDir(ctx, treeDst, tree, engine.Transfer{}))
			})},
			contender{"scp -r", func() error { return checkTree(scpCmd("-r")(tree, treeDst)) }},
			contender{"scp -O -r", func() error { return checkTree(scpCmd("-O", "-r")(tree, treeDst)) }},
		), treeBytes)
	}

	if want("build") {
		// The communicator's share of a build: connect, echo, upload 10 MiB.
		small := filepath.Join(dir, "10mib.bin")
		writeRandom(t, small, 10<<20, 2)
		var seq int
		var mu sync.Mutex
		nextDst := func() string {
			mu.Lock()
			defer mu.Unlock()
			seq++
			return filepath.Join(dir, fmt.Sprintf("build-%d.bin", seq))
		}
		ours := connected(func(c *ssh.Communicator) error {
			if _, err := c.Run(ctx, &engine.Command{Command: "echo hello", Stdout: io.Discard}); err != nil {
				return err
			}
			f, err := os.Open(small)
			if err != nil {
				return err
			}
			defer f.Close()
			d := nextDst()
			defer os.Remove(d)
			return c.Upload(ctx, d, f, engine.Transfer{Size: 10 << 20})
		})
		theirs := func() error {
			if err := sshCmd("echo", "hello"); err != nil {
				return err
			}
			d := nextDst()
			defer os.Remove(d)
			return scpCmd()(small, d)
		}
		oneBuild := nullBuilds(t, srv, dir, small, 1)
		thirtyBuilds := nullBuilds(t, srv, dir, small, 30)
		one := measure(t, srv, 10, contender{"imgbuild null() build", oneBuild}, contender{"imgbuild communicator", ours}, contender{"ssh echo + scp", theirs})
		tb.add("build: echo + 10 MiB, x1", one, 10<<20)
		thirty := measure(t, srv, 3,
			contender{"imgbuild null() builds", thirtyBuilds},
			contender{"imgbuild communicator", func() error { return parallel(30, ours) }},
			contender{"ssh echo + scp", func() error { return parallel(30, theirs) }},
		)
		tb.add("build: echo + 10 MiB, x30", thirty, 30*10<<20)
		defer fmt.Printf("30 at once / 1 alone: imgbuild null() %.2fx, communicator %.2fx, OpenSSH %.2fx (wall time)\n",
			thirty[0].median.Seconds()/one[0].median.Seconds(), thirty[1].median.Seconds()/one[1].median.Seconds(),
			thirty[2].median.Seconds()/one[2].median.Seconds())
	}
	tb.print()
}

// nullBuilds returns a function that runs n full null() builds at once
// through the description loader and the engine, as imgbuild run does:
// each connects, runs shell(inline = ["echo hello"]) and uploads the 10 MiB
// file with file(), then disconnects.
func nullBuilds(t *testing.T, srv *sshtest.Server, dir, payload string, n int) func() error {
	t.Helper()
	ws := filepath.Join(dir, fmt.Sprintf("ws-%d", n))
	os.MkdirAll(ws, 0o755)
	os.Link(payload, filepath.Join(ws, "payload.bin"))
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `null(name = "b%d", ssh_host = %q, ssh_port = %d, ssh_username = %q,
    ssh_private_key_file = %q, ssh_host_key = %q,
    provisioners = [shell(inline = ["echo hello"]), file(source = "payload.bin", destination = %q)])
`, i, srv.Host, srv.Port, srv.User, srv.ClientKeyFile, srv.HostKeyFingerprint, filepath.Join(dir, fmt.Sprintf("null-%d-%d.bin", n, i)))
	}
	file := filepath.Join(ws, "images.star")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := engine.NewRegistry()
	all.Register(reg)
	d, err := description.Load(description.Options{File: file, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	return func() error {
		sum := engine.Run(context.Background(), d.Graph, reg, event.NewBus(), engine.RunOptions{Parallel: n, Workspace: ws, TempDir: tmp})
		for _, r := range sum.Results {
			if r.Err != nil {
				return r.Err
			}
		}
		return nil
	}
}

func parallel(n int, f func() error) error {
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		go func() { errs <- f() }()
	}
	var first error
	for i := 0; i < n; i++ {
		if err := <-errs; err != nil && first == nil {
			first = err
		}
	}
	return first
}

// opensshOptions are the options of OpenSSH's clients that point them at
// srv with its keys alone, the benchmark's cipher and key exchange.
func opensshOptions(srv *sshtest.Server) []string {
	return []string{"-F", "/dev/null", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + srv.KnownHostsFile, "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-i", srv.ClientKeyFile,
		"-c", cipher, "-o", "KexAlgorithms=" + kex, "-o", "LogLevel=ERROR"}
}

func runTool(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return nil
}

func writeRandom(t *testing.T, path string, size int64, seed byte) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r := rand.NewChaCha8([32]byte{seed})
	if _, err := io.CopyN(f, readerFunc(r.Read), size); err != nil {
		t.Fatal(err)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(b []byte) (int, error) { return f(b) }

// writeTree writes n files of 1 to 16 KiB in directories of 100, and
// returns their total size.
func writeTree(t *testing.T, root string, n int) int64 {
	t.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	var total int64
	for i := 0; i < n; i++ {
		d := filepath.Join(root, fmt.Sprintf("dir%02d", i/100))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		size := int64(1024 + rng.IntN(15*1024))
		writeRandom(t, filepath.Join(d, fmt.Sprintf("file%04d", i)), size, byte(i))
		total += size
	}
	return total
}

func opensshVersion() string {
	out, _ := exec.Command("ssh", "-V").CombinedOutput()
	return strings.TrimSpace(string(out))
}

// checkSize returns a check of a transfer's result: its error, else the
// file dst (the file transferred, named in messages) of size bytes,
// removed once checked.
func checkSize(dst string, size int64, what string) func(err error) error {
	return func(err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Stat(dst)
		if err != nil || fi.Size() != size {
			return fmt.Errorf("%s file: %v, %d bytes", what, err, fi.Size())
		}
		return os.Remove(dst)
	}
}
