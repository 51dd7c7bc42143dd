// Package chroot is the chroot communicator: it runs a build's commands
// inside a root file system tree on this machine (a debootstrapped Debian,
// say) as if the tree were the machine, and moves files into and out of it.
// The rootfs() builder provisions its trees through it.
//
// Every command runs in namespaces of its own, made for it and gone with it:
//
//   - a private mount namespace, where the tree gets a fresh /proc, a
//     read-only /sys, a small /dev (null, zero, full, random, urandom, tty,
//     a private devpts and /dev/shm) and a tmpfs on /run, plus the bind
//     mounts the caller asks for (a package cache). None of these mounts is
//     ever visible on this machine, so nothing stays mounted even when
//     imgbuild is killed;
//   - a PID namespace whose first process is a small helper (this program,
//     run again): when the command ends, or is cancelled, or imgbuild dies,
//     the helper exits and the kernel kills whatever the command left
//     running in the background.
//
// For the length of a session (New to Close) the tree can also get
// /usr/sbin/policy-rc.d, so that packages do not start services, and this
// machine's /etc/resolv.conf, so that apt can resolve names; Close puts back
// what was there.
//
// RunIsolated runs a program of this machine (debootstrap) in the same kind
// of private mount and PID namespaces, without the chroot, so that the
// mounts it makes inside a tree never outlive it either.
//
// Everything here needs root. The package knows nothing of Starlark or of
// the build graph: it implements engine.Communicator.
package chroot
