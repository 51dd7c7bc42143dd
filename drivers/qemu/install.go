package qemu

import (
	"strings"

	"github.com/imgbuild/imgbuild/drivers/bootcmd"
	"github.com/imgbuild/imgbuild/drivers/httpserve"
	"github.com/imgbuild/imgbuild/drivers/iso"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// httpIP is where the guest reaches this machine through QEMU's user
// network, and so the HTTP server: {http_ip}.
const httpIP = "10.0.2.2"

// defaultInstallDisk is the blank disk's size when disk_size is not set
// (Packer's 40960M).
const defaultInstallDisk = "40G"

// validateInstall checks the keywords of installing from an ISO, and that
// a build boots a disk or an ISO.
func (c *Config) validateInstall(deferred schema.Deferred) error {
	hasDisk := c.Disk != "" || deferred.Has("disk")
	hasISO := c.installing() || deferred.Has("iso_url") || deferred.Has("iso_urls")
	switch {
	case !hasDisk && !hasISO:
		return schema.Errorf("disk", "is not set, and neither is iso_url: set disk (an image to boot, such as base.disk) or iso_url (an installer ISO to install onto a blank disk)")
	case hasDisk && hasISO:
		return schema.Errorf("iso_url", "is set with disk: a build boots an image (disk) or installs from an ISO onto a blank disk (iso_url), not both")
	case c.ISOURL != "" && len(c.ISOURLs) > 0:
		return schema.Errorf("iso_urls", "is set with iso_url: give one ISO as iso_url, or several to try in order as iso_urls")
	}
	if hasISO && (c.Kernel != "" || deferred.Has("kernel")) {
		return schema.Errorf("kernel", "is set with iso_url: the machine boots the ISO's boot loader (type the kernel's arguments with boot_command)")
	}
	if hasISO && !deferred.Has("iso_checksum") {
		if c.ISOChecksum == "" {
			return schema.Errorf("iso_checksum", "is required with iso_url: \"sha256:<hex>\", \"file:SHA256SUMS\" (or \"none\" to skip the check)")
		}
		if _, err := iso.ParseChecksum(c.ISOChecksum); err != nil {
			return schema.Errorf("iso_checksum", "%v", err)
		}
	}
	if c.ISOChecksum != "" && !hasISO {
		return schema.Errorf("iso_checksum", "is set but iso_url is not: the checksum is that file's")
	}
	if err := bootcmd.Check(c.BootCommand, c.serveHTTP(), deferred); err != nil {
		return err
	}
	if err := httpserve.CheckContent(c.HTTPContent); err != nil {
		return err
	}
	for p := range c.CDContent {
		if strings.TrimLeft(p, "/") == "" || strings.Contains(p, "..") {
			return schema.Errorf("cd_content", "%q is not a file path (\"user-data\")", p)
		}
	}
	if c.HTTPPortMin < 1 || c.HTTPPortMin > 65535 || c.HTTPPortMax < 1 || c.HTTPPortMax > 65535 {
		return schema.Errorf("http_port_min", "http_port_min %d and http_port_max %d must be TCP ports (1 to 65535)", c.HTTPPortMin, c.HTTPPortMax)
	}
	if c.HTTPPortMax < c.HTTPPortMin {
		return schema.Errorf("http_port_max", "%d is below http_port_min (%d)", c.HTTPPortMax, c.HTTPPortMin)
	}
	if c.VMName != "" && (strings.ContainsAny(c.VMName, "/\\") || c.VMName == "." || c.VMName == "..") {
		return schema.Errorf("vm_name", "%q is not a file name: the output disk is written into output_directory as vm_name", c.VMName)
	}
	if len(c.CDLabel) > 32 {
		return schema.Errorf("cd_label", "%q is longer than ISO9660's 32 characters", c.CDLabel)
	}
	return nil
}

// serveHTTP reports whether the build runs the installer's HTTP server.
func (c *Config) serveHTTP() bool { return c.HTTPDirectory != "" || len(c.HTTPContent) > 0 }

// makeCD reports whether the build attaches a second CD.
func (c *Config) makeCD() bool { return len(c.CDFiles) > 0 || len(c.CDContent) > 0 }
