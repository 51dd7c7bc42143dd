// Package e2e holds the end-to-end tests of the configuration-management
// provisioners in real builds: one rootfs() build (one debootstrap) in
// which ansible() reaches the chroot through its SSH adapter and
// ansible_local() and puppet_apply() install their tools from the Debian
// mirror and apply a playbook and a manifest inside the tree; and
// examples/ansible, which builds the same machine as a rootfs image and as
// a QEMU image from one playbook. They need root, debootstrap, the mirror
// (and QEMU for the example) and take minutes; -short skips them.
package e2e
