// Package vm starts and stops QEMU machines: the command line of a
// machine (disk, direct kernel boot, user network with its SSH port
// forwarded from 127.0.0.1, systemd credentials through SMBIOS), the
// accelerator (KVM only where it can work), the running process, its
// serial console, and waiting for its SSH server's host key. The qemu()
// builder boots its machines with it, and rootfs() the test machines of
// images that have a kernel; it knows nothing of either.
package vm
