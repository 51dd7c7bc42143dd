//go:build !linux

package chroot

import (
	"fmt"
	"runtime"
	"syscall"
)

// namespaces has nothing to give off Linux: run refuses first (supported).
func namespaces() *syscall.SysProcAttr { return nil }

// supported says why the chroot communicator cannot work here: it needs
// Linux's mount and PID namespaces. A release binary for another system
// still builds every other driver.
func supported() error {
	return fmt.Errorf("the chroot communicator needs Linux (mount and PID namespaces); this is %s: build rootfs images on a Linux machine", runtime.GOOS)
}

func setupMounts(*spec) error { return supported() }
