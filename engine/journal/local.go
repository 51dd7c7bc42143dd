package journal

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Reaper finds and removes what a dead run left of one kind of entry.
// Drivers register one per kind they record (engine.Registry.AddReaper).
type Reaper interface {
	// Find lists what is still there of e, one line each for people
	// ("instance i-0abc in eu-west-1"); none when it is all gone.
	Find(ctx context.Context, e Entry) ([]string, error)
	// Remove removes it. What is gone already is not an error.
	Remove(ctx context.Context, e Entry) error
}

// The kinds of this machine's own resources, whose reapers Local returns.
const (
	// KindDir is a directory imgbuild made (a build's scratch directory).
	// Where: "path", absolute; its name starts with "imgbuild-".
	KindDir = "dir"
	// KindProcesses are the processes of a run: every process a run starts
	// has EnvVar=<run> in its environment. Where: "env", that entry.
	KindProcesses = "processes"
)

// Local returns the reapers of the kinds above.
func Local() map[string]Reaper {
	return map[string]Reaper{KindDir: dirReaper{}, KindProcesses: processReaper{}}
}

type dirReaper struct{}

func (dirReaper) Find(ctx context.Context, e Entry) ([]string, error) {
	p := e.Where["path"]
	if _, err := os.Lstat(p); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return []string{e.What}, nil
}

func (dirReaper) Remove(ctx context.Context, e Entry) error {
	p := e.Where["path"]
	if !filepath.IsAbs(p) || !strings.HasPrefix(filepath.Base(p), "imgbuild-") {
		return fmt.Errorf("will not remove %q: imgbuild's directories are absolute paths named imgbuild-*; remove it by hand if it is yours to remove", p)
	}
	mounts, err := MountsUnder(p)
	if err != nil {
		return err
	}
	// A killed build leaves what it mounted in its scratch directory (a
	// chroot's /proc, an image test's overlay): unmount it, deepest first
	// and detached, which leaves the mounted file systems themselves alone.
	// Nothing is removed while anything is still mounted under it.
	sort.Slice(mounts, func(i, j int) bool { return len(mounts[i]) > len(mounts[j]) })
	for _, m := range mounts {
		_ = syscall.Unmount(m, syscall.MNT_DETACH)
	}
	if left, err := MountsUnder(p); err != nil {
		return err
	} else if len(left) > 0 {
		return fmt.Errorf("will not remove %s: something is still mounted under it (%s) and could not be unmounted; unmount it first", p, strings.Join(left, ", "))
	}
	return os.RemoveAll(p)
}

// MountsUnder lists the mount points of this process's mount namespace at
// or below dir.
func MountsUnder(dir string) ([]string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, fmt.Errorf("listing mounts: %w", err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountinfo(f[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	return out, nil
}

// unescapeMountinfo undoes mountinfo's octal escapes (\040 for a space).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// processReaper finds a run's processes by the entry EnvVar=<run> in their
// environment, which every process the run started inherited.
type processReaper struct{}

// proc is one process found.
type proc struct {
	pid, pgid int
	name      string
}

func (processReaper) Find(ctx context.Context, e Entry) ([]string, error) {
	procs, err := marked(e.Where["env"])
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range procs {
		out = append(out, fmt.Sprintf("process %d (%s)", p.pid, p.name))
	}
	return out, nil
}

// Remove kills the run's processes with SIGKILL, and their process groups
// when every member of the group is the run's (a command run in a group of
// its own, with its children): never a group the run only joined, such as
// the shell's job it was started in. It looks again until none is left, as
// a dying process may have forked.
func (processReaper) Remove(ctx context.Context, e Entry) error {
	env := e.Where["env"]
	if !strings.HasPrefix(env, EnvVar+"=") || len(env) <= len(EnvVar)+1 {
		return fmt.Errorf("will not look for processes by %q: not a run's marker", env)
	}
	for range 20 {
		procs, err := marked(env)
		if err != nil {
			return err
		}
		if len(procs) == 0 {
			return nil
		}
		groups, err := groupsOnlyOf(procs)
		if err != nil {
			return err
		}
		for _, pg := range groups {
			_ = syscall.Kill(-pg, syscall.SIGKILL)
		}
		for _, p := range procs {
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	procs, _ := marked(env)
	if len(procs) > 0 {
		return fmt.Errorf("%d processes of the run are still alive after SIGKILL", len(procs))
	}
	return nil
}

// marked lists the live processes (not this one) whose environment holds
// env.
func marked(env string) ([]proc, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, fmt.Errorf("listing processes: %w", err)
	}
	needle := []byte(env)
	self := os.Getpid()
	var out []proc
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == self {
			continue
		}
		data, err := os.ReadFile(filepath.Join("/proc", d.Name(), "environ"))
		if err != nil {
			continue // gone, or not ours to read
		}
		found := false
		for _, kv := range bytes.Split(data, []byte{0}) {
			if bytes.Equal(kv, needle) {
				found = true
				break
			}
		}
		if !found {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.state == 'Z' {
			continue
		}
		out = append(out, proc{pid: pid, pgid: st.pgid, name: st.comm})
	}
	return out, nil
}

// groupsOnlyOf returns the process groups of procs every live member of
// which is in procs, leaving out this process's own group.
func groupsOnlyOf(procs []proc) ([]int, error) {
	ours := map[int]bool{}
	cand := map[int]bool{}
	for _, p := range procs {
		ours[p.pid] = true
		cand[p.pgid] = true
	}
	delete(cand, syscall.Getpgrp())
	delete(cand, 0)
	delete(cand, 1)
	if len(cand) == 0 {
		return nil, nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || ours[pid] {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.state == 'Z' {
			continue
		}
		delete(cand, st.pgid) // a member that is not the run's
	}
	out := make([]int, 0, len(cand))
	for pg := range cand {
		out = append(out, pg)
	}
	return out, nil
}

type stat struct {
	comm  string
	state byte
	pgid  int
}

// readStat reads a process's name, state and group from /proc/pid/stat.
func readStat(pid int) (stat, error) {
	f, err := os.Open(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return stat{}, err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && line == "" {
		return stat{}, err
	}
	// pid (comm) state ppid pgrp ...; comm may hold spaces and parens.
	open, close := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || close < open {
		return stat{}, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, line)
	}
	rest := strings.Fields(line[close+1:])
	if len(rest) < 3 {
		return stat{}, fmt.Errorf("/proc/%d/stat: unexpected %q", pid, line)
	}
	pgid, err := strconv.Atoi(rest[2])
	if err != nil {
		return stat{}, err
	}
	return stat{comm: line[open+1 : close], state: rest[0][0], pgid: pgid}, nil
}
