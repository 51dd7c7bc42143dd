//go:build !linux

package vm

import "syscall"

// processGroup puts QEMU in a process group of its own. Only Linux can have
// it killed when imgbuild dies (Pdeathsig): elsewhere, a killed imgbuild
// may leave QEMU running.
func processGroup() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
