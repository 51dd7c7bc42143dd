package chroot

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// helperArg0 is argv[0] of this program when it runs again as the helper
// that sets up a command's namespaces; the spec arrives on fd 3 and the
// outcome leaves on fd 4.
const helperArg0 = "imgbuild-chroot-helper"

// spec says what the helper runs and how.
type spec struct {
	// Root is the tree to chroot into; "" runs Argv on this machine (with
	// a fresh /proc, in the private namespaces).
	Root  string   `json:"root,omitempty"`
	Binds []Bind   `json:"binds,omitempty"`
	Dir   string   `json:"dir"`
	Env   []string `json:"env"`
	Argv  []string `json:"argv"`
	// Grace is how long the namespace's processes have between SIGTERM and
	// SIGKILL when the helper is asked to stop.
	Grace time.Duration `json:"grace"`
}

// outcome is what the helper reports: the command's exit status, or why it
// could not be run.
type outcome struct {
	Status int    `json:"status"`
	Error  string `json:"error,omitempty"`
}

func init() {
	// The helper is this very program run again: it must take over before
	// anything else runs (a test binary's flags, a command line's).
	if len(os.Args) == 1 && os.Args[0] == helperArg0 {
		os.Exit(helperMain())
	}
}

// helperMain runs as the first process of a fresh PID namespace with a
// mount namespace of its own: it makes the mounts, starts the command,
// reaps every process of the namespace, and exits with the command's
// status. Its exit kills what is left in the namespace.
func helperMain() int {
	// A namespace's first process gets only the signals it handles.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)

	out := os.NewFile(4, "outcome")
	report := func(o outcome) int {
		_ = json.NewEncoder(out).Encode(o)
		return 0
	}
	var sp spec
	in := os.NewFile(3, "spec")
	if err := json.NewDecoder(in).Decode(&sp); err != nil {
		report(outcome{Status: -1, Error: "reading the helper's instructions: " + err.Error()})
		return 1
	}
	in.Close()
	if err := setupMounts(&sp); err != nil {
		report(outcome{Status: -1, Error: err.Error()})
		return 1
	}
	attr := &syscall.ProcAttr{
		Dir:   sp.Dir,
		Env:   sp.Env,
		Files: []uintptr{0, 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	if sp.Root != "" {
		attr.Sys.Chroot = sp.Root
	}
	// Inside a tree, argv[0] is absolute (/bin/sh) and found after the
	// chroot; on this machine it is looked up in PATH.
	path := sp.Argv[0]
	if sp.Root == "" && !strings.Contains(path, "/") {
		p, err := lookPath(path, sp.Env)
		if err != nil {
			report(outcome{Status: -1, Error: err.Error()})
			return 1
		}
		path = p
	}
	pid, err := syscall.ForkExec(path, sp.Argv, attr)
	if err != nil {
		where := ""
		if sp.Root != "" {
			where = " inside " + sp.Root
		}
		report(outcome{Status: -1, Error: fmt.Sprintf("starting %s%s: %v", sp.Argv[0], where, err)})
		return 1
	}

	exited := make(chan syscall.WaitStatus, 1)
	go reap(pid, exited)
	var killAt <-chan time.Time
	for {
		select {
		case ws := <-exited:
			status := ws.ExitStatus()
			if ws.Signaled() {
				status = 128 + int(ws.Signal())
			}
			// Returning kills the rest of the namespace.
			return report(outcome{Status: status})
		case <-stop:
			// Everything in the namespace but the helper itself.
			_ = syscall.Kill(-1, syscall.SIGTERM)
			if killAt == nil {
				killAt = time.After(sp.Grace)
			}
		case <-killAt:
			_ = syscall.Kill(-1, syscall.SIGKILL)
		}
	}
}

// reap waits for every process of the namespace (orphans are reparented to
// the helper) and reports the command's status once it has ended.
func reap(cmd int, exited chan<- syscall.WaitStatus) {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			// No children left: cannot happen before cmd was reaped.
			exited <- ws
			return
		}
		if pid == cmd {
			exited <- ws
			return
		}
	}
}

func lookPath(name string, env []string) (string, error) {
	pathVar := "/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in %s: install it", name, pathVar)
}
