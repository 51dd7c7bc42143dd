package chroot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// namespaces are the process attributes of the helper: fresh mount and PID
// namespaces, and death with imgbuild.
func namespaces() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID,
		// If imgbuild dies, so does the namespace.
		Pdeathsig: syscall.SIGKILL,
	}
}

// supported says whether this system has what the package needs: Linux
// has.
func supported() error { return nil }

// devNodes are the device files a tree's /dev gets, bound from this
// machine's.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// setupMounts makes the namespace's mounts: everything private first, so
// that nothing propagates back to this machine's mount table.
func setupMounts(sp *spec) error {
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mount namespace private: %w", err)
	}
	if sp.Root == "" {
		// Run on this machine, seeing only the namespace's processes.
		if err := syscall.Mount("proc", "/proc", "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("mounting /proc: %w", err)
		}
		return nil
	}
	root := sp.Root
	target := func(rel string) (string, error) {
		p := filepath.Join(root, rel)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if err := os.MkdirAll(p, 0o755); err != nil {
				return "", err
			}
			return p, nil
		case err != nil:
			return "", err
		case fi.Mode()&os.ModeSymlink != 0:
			return "", fmt.Errorf("%s is a symbolic link in the tree: refusing to mount over it", "/"+rel)
		case !fi.IsDir():
			return "", fmt.Errorf("%s is not a directory in the tree", "/"+rel)
		}
		return p, nil
	}
	mount := func(src, rel, fstype string, flags uintptr, data string) error {
		p, err := target(rel)
		if err != nil {
			return fmt.Errorf("mounting /%s in %s: %w", rel, root, err)
		}
		if err := syscall.Mount(src, p, fstype, flags, data); err != nil {
			return fmt.Errorf("mounting %s on /%s in %s: %w", fstype+src, rel, root, err)
		}
		return nil
	}
	const nosuid, nodev, noexec = syscall.MS_NOSUID, syscall.MS_NODEV, syscall.MS_NOEXEC
	if err := mount("proc", "proc", "proc", nosuid|nodev|noexec, ""); err != nil {
		return err
	}
	if err := mount("sysfs", "sys", "sysfs", syscall.MS_RDONLY|nosuid|nodev|noexec, ""); err != nil {
		// Without permission for a fresh sysfs, a read-only view of ours.
		if err2 := mount("/sys", "sys", "", syscall.MS_BIND|syscall.MS_REC, ""); err2 != nil {
			return err
		}
		_ = syscall.Mount("", filepath.Join(root, "sys"), "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, "")
	}
	if err := mount("tmpfs", "dev", "tmpfs", nosuid|syscall.MS_STRICTATIME, "mode=755,size=4m"); err != nil {
		return err
	}
	dev := filepath.Join(root, "dev")
	for _, n := range devNodes {
		p := filepath.Join(dev, n)
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o666)
		if err != nil {
			return fmt.Errorf("making /dev/%s in %s: %w", n, root, err)
		}
		f.Close()
		if err := syscall.Mount("/dev/"+n, p, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding /dev/%s into %s: %w", n, root, err)
		}
	}
	if err := mount("devpts", "dev/pts", "devpts", nosuid|noexec, "newinstance,ptmxmode=0666,mode=0620"); err != nil {
		return err
	}
	if err := mount("tmpfs", "dev/shm", "tmpfs", nosuid|nodev, "mode=1777"); err != nil {
		return err
	}
	for name, to := range map[string]string{"ptmx": "pts/ptmx", "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1", "stderr": "/proc/self/fd/2"} {
		if err := os.Symlink(to, filepath.Join(dev, name)); err != nil {
			return fmt.Errorf("making /dev/%s in %s: %w", name, root, err)
		}
	}
	if err := mount("tmpfs", "run", "tmpfs", nosuid|nodev, "mode=755"); err != nil {
		return err
	}
	for _, b := range sp.Binds {
		rel := strings.TrimLeft(filepath.Clean("/"+b.Target), "/")
		if err := mount(b.Source, rel, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return err
		}
		if b.ReadOnly {
			if err := syscall.Mount("", filepath.Join(root, rel), "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
				return fmt.Errorf("making /%s read-only in %s: %w", rel, root, err)
			}
		}
	}
	return nil
}
