// Package all registers every driver compiled into imgbuild: the
// local(), null(), rootfs(), qemu(), amazon_ebs(), vsphere_clone() and
// vsphere_iso() builders, the aws_ami() lookup, the shell(), shell_local(),
// file(), ansible(), ansible_local(), puppet_apply(), chef_solo(),
// testinfra() and goss() provisioners, and the manifest(), checksum(), vagrant_box(), ova(),
// vmware_vmx(), disk_image() and oci_image() post-processors. The command line tool calls Register to fill the
// registry the builtins layer and the engine read. It knows nothing of
// Starlark.
package all

import (
	"github.com/imgbuild/imgbuild/drivers/amazon"
	"github.com/imgbuild/imgbuild/drivers/amazon/s3state"
	"github.com/imgbuild/imgbuild/drivers/ansible"
	"github.com/imgbuild/imgbuild/drivers/chef"
	"github.com/imgbuild/imgbuild/drivers/diskimage"
	"github.com/imgbuild/imgbuild/drivers/goss"
	"github.com/imgbuild/imgbuild/drivers/local"
	"github.com/imgbuild/imgbuild/drivers/null"
	"github.com/imgbuild/imgbuild/drivers/oci"
	"github.com/imgbuild/imgbuild/drivers/ova"
	"github.com/imgbuild/imgbuild/drivers/post"
	"github.com/imgbuild/imgbuild/drivers/provision"
	"github.com/imgbuild/imgbuild/drivers/puppet"
	"github.com/imgbuild/imgbuild/drivers/qemu"
	"github.com/imgbuild/imgbuild/drivers/rootfs"
	"github.com/imgbuild/imgbuild/drivers/testinfra"
	"github.com/imgbuild/imgbuild/drivers/vagrant"
	"github.com/imgbuild/imgbuild/drivers/vmware"
	"github.com/imgbuild/imgbuild/drivers/vsphere"
	"github.com/imgbuild/imgbuild/engine"
)

// Register adds every built-in driver to r.
func Register(r *engine.Registry) { RegisterWith(r, amazon.New(amazon.Options{})) }

// RegisterWith adds every built-in driver to r, with aws as the amazon
// driver (tests give theirs SDK middleware that points it at moto).
func RegisterWith(r *engine.Registry, aws *amazon.Driver) {
	local.Register(r)
	null.Register(r)
	aws.Register(r)
	s3state.Register(r)
	rootfs.Register(r)
	qemu.Register(r)
	vagrant.Register(r)
	diskimage.Register(r)
	ova.Register(r)
	oci.Register(r)
	vmware.Register(r)
	vsphere.Register(r)
	provision.Register(r)
	ansible.Register(r)
	puppet.Register(r)
	chef.Register(r)
	testinfra.Register(r)
	goss.Register(r)
	post.Register(r)
}
