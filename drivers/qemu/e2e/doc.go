// Package e2e holds the end-to-end tests of the local image builders: the
// quickstart (examples/quickstart.star: rootfs() → qemu() → a compressed
// qcow2, libvirt and VirtualBox Vagrant boxes, an OVA and a manifest), run
// once, and a second boot of the image it made. They need root, debootstrap, QEMU and the Debian mirror,
// and take minutes; -short skips them.
package e2e
