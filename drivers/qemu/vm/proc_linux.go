package vm

import "syscall"

// processGroup puts QEMU in a process group of its own, and has it killed
// if imgbuild dies.
func processGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
