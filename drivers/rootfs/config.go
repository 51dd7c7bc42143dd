package rootfs

import (
	"fmt"
	"regexp"

	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// DefaultPackageCache is where downloaded packages are kept across runs
// when package_cache is not set.
const DefaultPackageCache = "/var/cache/imgbuild/packages"

// Config is rootfs()'s configuration.
type Config struct {
	Suite           string            `kw:"suite" default:"bookworm" doc:"Debian release to install: a codename (bookworm, trixie) or stable, testing, unstable."`
	Mirror          string            `kw:"mirror" doc:"Debian mirror to install from; \"\" means the one this machine's apt uses (else http://deb.debian.org/debian)."`
	Variant         string            `kw:"variant" default:"minbase" enum:"minbase|buildd|default" doc:"debootstrap variant: minbase (essential packages and apt), buildd, or default (priority important as well)."`
	Components      []string          `kw:"components" default:"[\"main\"]" doc:"Archive components to install from."`
	Packages        []string          `kw:"packages" doc:"Packages installed with the base system (debootstrap --include): linux-image-amd64 and systemd-sysv make it bootable."`
	Checkpoint      bool              `kw:"checkpoint" default:"True" doc:"Keep the tree debootstrap makes in the checkpoint cache ($IMGBUILD_CHECKPOINTS, else ~/.cache/imgbuild/checkpoints; bounded by $IMGBUILD_CHECKPOINT_MAX_SIZE, 10G by default; see imgbuild cache ls) and reuse it, instead of running debootstrap, while suite, mirror, variant, components, packages, the architecture, debootstrap and the mirror's Release file are the same: a change in the provisioners then skips debootstrap. False always runs debootstrap."`
	PackageCache    string            `kw:"package_cache" doc:"Directory keeping downloaded packages across runs, for debootstrap and for apt in the provisioners (the image never ships them); \"\" means /var/cache/imgbuild/packages, \"none\" keeps nothing."`
	Size            string            `kw:"size" default:"2G" doc:"Size of the ext4 file system in the raw and qcow2 outputs (\"2G\", \"1536M\"); if the files do not fit, the build says how much they need."`
	Formats         []string          `kw:"formats" default:"[\"qcow2\"]" doc:"What to make: any of \"tar\" (reproducible), \"raw\" and \"qcow2\" (an ext4 file system made with mkfs.ext4 -d)."`
	Compress        bool              `kw:"compress" default:"False" doc:"Compress the qcow2 output (smaller, slower to write)."`
	Hostname        string            `kw:"hostname" doc:"The image's host name; \"\" means the build's name."`
	Network         string            `kw:"network" default:"dhcp" enum:"dhcp|none" doc:"dhcp makes systemd-networkd take an address by DHCP on every Ethernet interface (when systemd is installed); none leaves networking alone."`
	Env             map[string]string `kw:"env" doc:"Environment variables for every command the provisioners run in the tree."`
	SourceDateEpoch int64             `kw:"source_date_epoch" doc:"Clamp every modification time in the images to this many seconds since 1970 (reproducible builds), and derive the file system's UUID from it; 0 means $SOURCE_DATE_EPOCH when that is set, else no clamping."`
	OutputDirectory string            `kw:"output_directory" default:"output/{build}" path:"output" doc:"Where the outputs go, relative to the workspace ({build} is the build's name). A previous run's outputs are replaced; a directory holding files imgbuild did not make is refused."`
	Force           bool              `kw:"force" default:"False" doc:"Also replace an output directory imgbuild made for another build (what imgbuild did not make is never replaced)."`
}

var (
	suiteName   = regexp.MustCompile(`^[a-z][a-z0-9.+-]*$`)
	packageName = regexp.MustCompile(`^[a-z0-9][a-z0-9.+-]+$`)
	hostName    = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

// Validate implements schema.Validator.
func (c *Config) Validate(deferred schema.Deferred) error {
	if !deferred.Has("suite") && !suiteName.MatchString(c.Suite) {
		return schema.Errorf("suite", "%q is not a Debian suite: name a codename such as \"bookworm\" or \"trixie\", or stable, testing, unstable", c.Suite)
	}
	if c.Mirror != "" && !deferred.Has("mirror") {
		if err := checkMirrorURL(c.Mirror); err != nil {
			return err
		}
	}
	if !deferred.Has("components") {
		if len(c.Components) == 0 {
			return schema.Errorf("components", "is empty: name at least \"main\"")
		}
		for _, comp := range c.Components {
			if !suiteName.MatchString(comp) {
				return schema.Errorf("components", "%q is not an archive component (main, contrib, non-free, non-free-firmware)", comp)
			}
		}
	}
	if !deferred.Has("packages") {
		for _, p := range c.Packages {
			if !packageName.MatchString(p) {
				return schema.Errorf("packages", "%q is not a Debian package name (lower case letters, digits, and + - .)", p)
			}
		}
	}
	if !deferred.Has("size") {
		n, err := qemuimg.ParseSize(c.Size)
		if err != nil {
			return schema.Errorf("size", "%v", err)
		}
		if n < 16<<20 {
			return schema.Errorf("size", "%s is smaller than the smallest useful ext4 file system (16M)", c.Size)
		}
	}
	if !deferred.Has("formats") {
		if len(c.Formats) == 0 {
			return schema.Errorf("formats", "is empty: name what to make, any of \"tar\", \"raw\", \"qcow2\"")
		}
		seen := map[string]bool{}
		for _, f := range c.Formats {
			if f != "tar" && f != "raw" && f != "qcow2" {
				msg := fmt.Sprintf("%q is not an output format: use \"tar\", \"raw\" or \"qcow2\"", f)
				if near := schema.Nearest(f, []string{"tar", "raw", "qcow2"}); near != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", near)
				}
				return schema.Errorf("formats", "%s", msg)
			}
			if seen[f] {
				return schema.Errorf("formats", "%q is listed twice", f)
			}
			seen[f] = true
		}
		if c.Compress && !seen["qcow2"] {
			return schema.Errorf("compress", "compresses the qcow2 output, but formats has no \"qcow2\"")
		}
	}
	if c.Hostname != "" && !deferred.Has("hostname") && !hostName.MatchString(c.Hostname) {
		return schema.Errorf("hostname", "%q is not a host name (letters, digits and -, at most 63)", c.Hostname)
	}
	if c.SourceDateEpoch < 0 {
		return schema.Errorf("source_date_epoch", "%d is negative: give seconds since 1970, such as the time of the last commit (git log -1 --format=%%ct)", c.SourceDateEpoch)
	}
	for k := range c.Env {
		if !shellquote.ValidName(k) {
			return schema.Errorf("env", "%q is not a valid environment variable name (letters, digits and _, not starting with a digit)", k)
		}
	}
	return nil
}
