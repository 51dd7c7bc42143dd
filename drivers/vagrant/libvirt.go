package vagrant

import (
	"fmt"
	"strconv"
	"strings"
)

// Vagrantfile is a libvirt box's Vagrantfile: libvirt with memory and
// cpus, and the box's own kernel, initrd and command line when the disk
// boots them directly.
func Vagrantfile(build string, memory, cpus int, kernel, initrd bool, cmdline string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Made by imgbuild's vagrant_box() for the build %q.\n", build)
	b.WriteString("Vagrant.configure(\"2\") do |config|\n")
	b.WriteString("  config.vm.provider :libvirt do |libvirt|\n")
	b.WriteString("    libvirt.driver = \"kvm\"\n")
	fmt.Fprintf(&b, "    libvirt.memory = %d\n", memory)
	fmt.Fprintf(&b, "    libvirt.cpus = %d\n", cpus)
	if kernel {
		b.WriteString("    # The disk holds a file system and no boot loader: boot the box's kernel.\n")
		b.WriteString("    libvirt.kernel = File.join(File.dirname(__FILE__), \"vmlinuz\")\n")
		if initrd {
			b.WriteString("    libvirt.initrd = File.join(File.dirname(__FILE__), \"initrd.img\")\n")
		}
		if cmdline == "" {
			cmdline = "root=/dev/vda ro console=ttyS0,115200n8"
		}
		fmt.Fprintf(&b, "    libvirt.cmd_line = %s\n", rubyString(cmdline))
	}
	b.WriteString("  end\n")
	b.WriteString("end\n")
	return b.String()
}

// rubyString quotes s as a Ruby double-quoted string literal.
func rubyString(s string) string {
	q := strconv.Quote(s)
	// Go's escapes are Ruby's, but "#{" interpolates in Ruby.
	return strings.ReplaceAll(q, "#{", `\#{`)
}
