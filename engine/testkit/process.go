package testkit

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Descendants lists the processes below pid (its children, theirs, and so
// on), read from /proc: what a test checks a command or a server left
// running, without counting other test runs' processes on the machine.
func Descendants(pid int) []int {
	if pid <= 0 {
		return nil // 0 would name the kernel's own
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces and parentheses.
		i := bytes.LastIndexByte(stat, ')')
		if i < 0 {
			continue
		}
		fields := strings.Fields(string(stat[i+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

// Alive reports whether pid is a running process: one that exists and is
// not a zombie (killed, and waiting only to be reaped).
func Alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	// The state follows the ") " that ends the command name.
	i := bytes.LastIndex(stat, []byte(") "))
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

// WaitForPIDFile waits until path holds a process id and a newline, as a
// shell's `echo $! > path` writes it, and returns the id.
func WaitForPIDFile(t testing.TB, path string) int {
	t.Helper()
	var pid int
	Eventually(t, "a process id in "+path, func() bool {
		b, err := os.ReadFile(path)
		if err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return false
		}
		pid, err = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil
	})
	return pid
}

// WaitGone waits until pid no longer runs (see [Alive]). If it still runs
// after [WaitTimeout], it kills it and fails the test saying what it was.
func WaitGone(t testing.TB, pid int, what string) {
	t.Helper()
	if !Poll(WaitTimeout, func() bool { return !Alive(pid) }) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("%s (process %d) still runs after %s", what, pid, WaitTimeout)
	}
}
