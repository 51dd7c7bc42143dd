// Package rootfs is the rootfs() builder: it installs a Debian root file
// system with debootstrap, provisions it through the chroot communicator
// (drivers/chroot), and makes images of it without loop devices or mounts:
// a reproducible tar, and an ext4 file system (mkfs.ext4 -d) as a raw disk
// and a qcow2, plus the kernel and initrd found in it for direct boot.
//
// A build goes: check the mirror and suite → debootstrap (in private
// namespaces, its downloads kept in a package cache) → configure (hostname,
// fstab, DHCP) → provisioners in the chroot → generalize (machine-id
// emptied, SSH host keys removed and regenerated on first boot,
// policy-rc.d and the borrowed resolv.conf gone) → images → checksum.
//
// It needs root, and says so before anything starts. Like every driver it
// knows nothing of Starlark: it gets a decoded Config in an engine.Job.
package rootfs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/imgbuild/imgbuild/drivers/chroot"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemuimg"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/step"
)

// Name is the builder's name in descriptions.
const Name = "rootfs"

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
	PackageCache    string            `kw:"package_cache" doc:"Directory keeping downloaded packages across runs, for debootstrap and for apt in the provisioners (the image never ships them); \"\" means /var/cache/imgbuild/packages, \"none\" keeps nothing."`
	Size            string            `kw:"size" default:"2G" doc:"Size of the ext4 file system in the raw and qcow2 outputs (\"2G\", \"1536M\"); if the files do not fit, the build says how much they need."`
	Formats         []string          `kw:"formats" default:"[\"qcow2\"]" doc:"What to make: any of \"tar\" (reproducible), \"raw\" and \"qcow2\" (an ext4 file system made with mkfs.ext4 -d)."`
	Compress        bool              `kw:"compress" default:"False" doc:"Compress the qcow2 output (smaller, slower to write)."`
	Hostname        string            `kw:"hostname" doc:"The image's host name; \"\" means the build's name."`
	Network         string            `kw:"network" default:"dhcp" enum:"dhcp|none" doc:"dhcp makes systemd-networkd take an address by DHCP on every Ethernet interface (when systemd is installed); none leaves networking alone."`
	Env             map[string]string `kw:"env" doc:"Environment variables for every command the provisioners run in the tree."`
	SourceDateEpoch int64             `kw:"source_date_epoch" doc:"Clamp every modification time in the images to this many seconds since 1970 (reproducible builds), and derive the file system's UUID from it; 0 means $SOURCE_DATE_EPOCH when that is set, else no clamping."`
	OutputDirectory string            `kw:"output_directory" doc:"Where the outputs go, relative to the workspace; \"\" means output/<build name>."`
	Force           bool              `kw:"force" default:"False" doc:"Replace outputs a previous run left in the output directory instead of failing."`
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

// Def declares the rootfs() builder.
func Def() *engine.BuilderDef {
	return &engine.BuilderDef{
		Schema: schema.Of(Name,
			"Installs a Debian root file system with debootstrap, runs the provisioners inside it through a chroot (private namespaces: nothing stays mounted or running), and makes a reproducible tar and an ext4 disk (raw, qcow2) of it without loop devices, with the kernel and initrd for direct boot. Needs root.",
			&Config{}),
		Outputs: []engine.Output{
			{Name: "disk", Doc: "The disk image (the qcow2 when made, else the raw), relative to the workspace when inside it; \"\" when only a tar was made."},
			{Name: "format", Doc: "The disk image's format: \"qcow2\" or \"raw\"."},
			{Name: "kernel", Doc: "The kernel found in the tree, copied beside the disk, for direct boot (qemu(kernel = ...)); \"\" when there is none."},
			{Name: "initrd", Doc: "The initrd matching the kernel; \"\" when there is none."},
			{Name: "append", Doc: "A kernel command line that boots the disk directly: root=UUID=... ro console=ttyS0."},
			{Name: "checksum", Doc: "\"sha256:<hex>\" of the disk image (of the tar when there is no disk)."},
			{Name: "tar", Doc: "The tar archive, when made."},
			{Name: "directory", Doc: "The output directory."},
		},
		Build: Build,
	}
}

// Register adds rootfs() to r.
func Register(r *engine.Registry) { r.AddBuilder(Def()) }

// build is one rootfs build's state, shared by its steps.
type build struct {
	job      *engine.Job
	cfg      *Config
	out      *output.Dir
	size     int64
	mirror   string
	codename string
	cache    string // "" when package_cache = "none"
	unlock   func()
	tree     string
	comm     *chroot.Comm
	uuid     string
	epoch    time.Time
	kernel   string
	initrd   string
	disk     string
	format   string
	tarPath  string
	checksum string
}

// Build runs one rootfs build. Without root, or without debootstrap,
// mkfs.ext4 or qemu-img when they are needed, it fails before anything
// starts.
func Build(ctx context.Context, job *engine.Job) (*engine.Artifact, error) {
	cfg, ok := job.Config.(*Config)
	if !ok {
		return nil, fmt.Errorf("rootfs: config is %T, want *rootfs.Config", job.Config)
	}
	if err := chroot.NeedRoot("rootfs()"); err != nil {
		return nil, err
	}
	if err := checkTools(cfg); err != nil {
		return nil, err
	}
	ws := job.Workspace
	if ws == "" {
		ws = "."
	}
	size, err := qemuimg.ParseSize(cfg.Size)
	if err != nil {
		return nil, fmt.Errorf("size: %w", err)
	}
	out, err := output.New(ws, cfg.OutputDirectory, job.Name)
	if err != nil {
		return nil, err
	}
	b := &build{job: job, cfg: cfg, out: out, size: size}
	if cfg.SourceDateEpoch > 0 {
		b.epoch = time.Unix(cfg.SourceDateEpoch, 0).UTC()
	} else if sde := os.Getenv("SOURCE_DATE_EPOCH"); sde != "" {
		n, err := strconv.ParseInt(sde, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("SOURCE_DATE_EPOCH=%q is not a number of seconds since 1970", sde)
		}
		b.epoch = time.Unix(n, 0).UTC()
	}
	b.uuid = b.makeUUID()

	err = job.Steps.Run(ctx,
		&step.Func{StepName: "check output directory", RunFunc: b.checkOutput},
		&step.Func{StepName: "check mirror", RunFunc: b.checkMirror},
		&step.Func{StepName: "lock package cache", RunFunc: b.lockCache, CleanFunc: b.unlockCache},
		&step.Func{StepName: "debootstrap", RunFunc: b.debootstrap, CleanFunc: b.removeTree,
			LeftFunc: func() []string { return []string{"root file system tree " + b.tree} }},
		&step.Func{StepName: "open chroot", RunFunc: b.openChroot, CleanFunc: func(context.Context, bool) error { return b.closeChroot() },
			LeftFunc: func() []string { return []string{"policy-rc.d and the borrowed resolv.conf in " + b.tree} }},
		&step.Func{StepName: "configure", RunFunc: b.configure},
		&step.Func{StepName: "provision", RunFunc: func(ctx context.Context) error { return job.Provision(ctx, b.comm) }},
		&step.Func{StepName: "generalize", RunFunc: b.generalize},
		&step.Func{StepName: "images", RunFunc: b.images, CleanFunc: b.removeOutputs, Artifact: true, LeftFunc: b.out.Leftovers},
	)
	if err != nil {
		return nil, err
	}
	return b.artifact(), nil
}

func checkTools(cfg *Config) error {
	need := map[string]string{"debootstrap": "debootstrap"}
	for _, f := range cfg.Formats {
		if f == "raw" || f == "qcow2" {
			need["mkfs.ext4"] = "e2fsprogs"
		}
		if f == "qcow2" {
			need[qemuimg.Program] = "qemu-utils"
		}
	}
	var missing, pkgs []string
	for prog, pkg := range need {
		if _, err := exec.LookPath(prog); err != nil {
			missing = append(missing, prog)
			pkgs = append(pkgs, pkg)
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		sort.Strings(pkgs)
		verb := "is"
		if len(missing) > 1 {
			verb = "are"
		}
		return fmt.Errorf("rootfs() needs %s, which %s not installed: apt-get install %s", joinAnd(missing), verb, strings.Join(pkgs, " "))
	}
	return nil
}

// joinAnd joins words as a sentence does: "a", "a and b", "a, b and c".
func joinAnd(words []string) string {
	if len(words) < 2 {
		return strings.Join(words, "")
	}
	return strings.Join(words[:len(words)-1], ", ") + " and " + words[len(words)-1]
}

func (b *build) display(p string) string { return b.out.Show(p) }

// makeUUID is the file system's UUID: derived from the build's name and
// SOURCE_DATE_EPOCH when that is set (same inputs, same image), else
// random.
func (b *build) makeUUID() string {
	var u [16]byte
	if !b.epoch.IsZero() {
		sum := sha256.Sum256([]byte("imgbuild rootfs " + b.job.Name + " " + strconv.FormatInt(b.epoch.Unix(), 10)))
		copy(u[:], sum[:16])
	} else {
		_, _ = rand.Read(u[:])
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// outputName is the output file's name for a format.
func (b *build) outputName(kind string) string {
	switch kind {
	case "kernel":
		return "vmlinuz"
	case "initrd":
		return "initrd.img"
	}
	return b.job.Name + "." + kind
}

func (b *build) wants(format string) bool {
	for _, f := range b.cfg.Formats {
		if f == format {
			return true
		}
	}
	return false
}

func (b *build) checkOutput(ctx context.Context) error {
	var names []string
	for _, kind := range append([]string{"kernel", "initrd"}, b.cfg.Formats...) {
		names = append(names, b.outputName(kind))
	}
	return b.out.Check("output_directory", b.cfg.Force, names...)
}

func (b *build) checkMirror(ctx context.Context) error {
	b.mirror = b.cfg.Mirror
	source := ""
	if b.mirror == "" {
		b.mirror = HostMirror()
		source = " (the mirror this machine's apt uses)"
	}
	b.mirror = strings.TrimRight(b.mirror, "/")
	codename, err := checkSuite(ctx, b.mirror, b.cfg.Suite)
	if err != nil {
		return err
	}
	b.codename = codename
	if codename != b.cfg.Suite {
		b.job.UI.Say("installing Debian %s (%s) from %s%s", b.cfg.Suite, codename, b.mirror, source)
	} else {
		b.job.UI.Say("installing Debian %s from %s%s", codename, b.mirror, source)
	}
	return nil
}

func (b *build) lockCache(ctx context.Context) error {
	switch b.cfg.PackageCache {
	case "none":
		return nil
	case "":
		b.cache = DefaultPackageCache
	default:
		b.cache = b.cfg.PackageCache
		if !filepath.IsAbs(b.cache) {
			b.cache = filepath.Join(b.out.Workspace, b.cache)
		}
	}
	for _, d := range []string{"debootstrap", "apt/partial"} {
		if err := os.MkdirAll(filepath.Join(b.cache, d), 0o755); err != nil {
			return fmt.Errorf("package cache %s: %w", b.cache, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(b.cache, ".lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("package cache %s: %w", b.cache, err)
	}
	said := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return fmt.Errorf("locking the package cache %s: %w", b.cache, err)
		}
		if !said {
			b.job.UI.Say("waiting for the package cache %s, in use by another build", b.cache)
			said = true
		}
		select {
		case <-ctx.Done():
			f.Close()
			return context.Cause(ctx)
		case <-time.After(time.Second):
		}
	}
	b.unlock = func() { f.Close() }
	return nil
}

func (b *build) unlockCache(ctx context.Context, failed bool) error {
	if b.unlock != nil {
		b.unlock()
		b.unlock = nil
	}
	return nil
}

// hostEnv is the environment of programs run on this machine: a fixed
// PATH and locale, and the proxy settings of imgbuild's own.
func hostEnv() []string {
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"DEBIAN_FRONTEND=noninteractive",
		"HOME=/root",
	}
	for _, k := range []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

func (b *build) debootstrapArgs() []string {
	args := []string{"debootstrap"}
	if b.cfg.Variant != "default" {
		args = append(args, "--variant="+b.cfg.Variant)
	}
	args = append(args, "--components="+strings.Join(b.cfg.Components, ","))
	if len(b.cfg.Packages) > 0 {
		args = append(args, "--include="+strings.Join(b.cfg.Packages, ","))
	}
	if b.cache != "" {
		args = append(args, "--cache-dir="+filepath.Join(b.cache, "debootstrap"))
	}
	args = append(args, b.cfg.Suite, b.tree, b.mirror)
	if !hasScript(b.cfg.Suite) && !hasScript(b.codename) {
		// A release newer than this debootstrap: its suites are made
		// like unstable's.
		b.job.UI.Warn("this machine's debootstrap does not know %q: installing it with the script for sid (update debootstrap if this fails)", b.cfg.Suite)
		args = append(args, filepath.Join(debootstrapScripts, "sid"))
	}
	return args
}

func hasScript(suite string) bool {
	if suite == "" {
		return false
	}
	_, err := os.Stat(filepath.Join(debootstrapScripts, suite))
	return err == nil
}

func (b *build) debootstrap(ctx context.Context) error {
	b.tree = filepath.Join(b.job.WorkDir, "rootfs")
	if err := os.Mkdir(b.tree, 0o755); err != nil {
		return fmt.Errorf("creating the tree: %w", err)
	}
	args := b.debootstrapArgs()
	b.job.UI.Say("running %s", strings.Join(args, " "))
	stdout, stderr := b.job.UI.Lines("stdout"), b.job.UI.Lines("stderr")
	last := &tailWriter{n: 8}
	status, err := chroot.RunIsolated(ctx, args, hostEnv(), "/", io.MultiWriter(stdout, last), io.MultiWriter(stderr, last))
	stdout.Close()
	stderr.Close()
	if err != nil {
		return err
	}
	if status != 0 {
		msg := fmt.Sprintf("debootstrap failed (exit status %d)", status)
		if log := lastLinesOf(filepath.Join(b.tree, "debootstrap/debootstrap.log"), 8); log != "" {
			msg += "; the end of its log:\n" + log
		} else if l := last.String(); l != "" {
			msg += ":\n" + l
		}
		return errors.New(msg)
	}
	// debootstrap copies this machine's resolv.conf into the tree: it
	// must not ship in the image.
	host, herr := os.ReadFile("/etc/resolv.conf")
	p := filepath.Join(b.tree, "etc/resolv.conf")
	if fi, err := os.Lstat(p); herr == nil && err == nil && fi.Mode().IsRegular() {
		if got, _ := os.ReadFile(p); bytes.Equal(got, host) {
			os.Remove(p)
		}
	}
	return nil
}

func (b *build) removeTree(ctx context.Context, failed bool) error {
	if b.tree == "" {
		return nil
	}
	// Commands mount only in namespaces of their own; should anything be
	// mounted here, removing the tree would remove what is mounted.
	if m, err := chroot.MountsUnder(b.tree); err != nil {
		return err
	} else if len(m) > 0 {
		return fmt.Errorf("not removing %s: %s is mounted in it (unmount it, then remove the tree)", b.tree, strings.Join(m, ", "))
	}
	if err := os.RemoveAll(b.tree); err != nil {
		return err
	}
	b.tree = ""
	return nil
}

func (b *build) openChroot(ctx context.Context) error {
	opts := chroot.Options{Env: b.cfg.Env, PolicyRCD: true, ResolvConf: true}
	if b.cache != "" {
		n, err := b.lendPackages()
		if err != nil {
			return err
		}
		if n > 0 {
			b.job.UI.Say("%d packages from the package cache put in apt's archive", n)
		}
	}
	c, err := chroot.New(b.tree, opts)
	if err != nil {
		return err
	}
	b.comm = c
	return nil
}

func (b *build) closeChroot() error {
	if b.comm == nil {
		return nil
	}
	err := b.comm.Close()
	b.comm = nil
	return err
}

// archives is apt's download directory in the tree.
const archives = "var/cache/apt/archives"

// lendPackages puts the cached packages in the tree's apt archive (as hard
// links when the cache and the tree share a file system), so that apt in
// the provisioners downloads only what the cache lacks. The archive is the
// tree's own: a provisioner's apt-get clean empties it, not the cache.
func (b *build) lendPackages() (int, error) {
	cached, _ := filepath.Glob(filepath.Join(b.cache, "apt", "*.deb"))
	dir := filepath.Join(b.tree, archives)
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return 0, nil // no apt in the tree
	}
	n := 0
	for _, p := range cached {
		dst := filepath.Join(dir, filepath.Base(p))
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := linkOrCopy(p, dst); err != nil {
			return n, fmt.Errorf("putting %s in the tree: %w", filepath.Base(p), err)
		}
		n++
	}
	return n, nil
}

// keepPackages moves what apt downloaded into the package cache and out of
// the tree: the image does not ship them.
func (b *build) keepPackages() (int, error) {
	debs, _ := filepath.Glob(filepath.Join(b.tree, archives, "*.deb"))
	n := 0
	for _, p := range debs {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if b.cache != "" {
			dst := filepath.Join(b.cache, "apt", filepath.Base(p))
			if _, err := os.Lstat(dst); err != nil {
				if err := linkOrCopy(p, dst); err != nil {
					return n, fmt.Errorf("keeping %s in the package cache: %w", filepath.Base(p), err)
				}
				n++
			}
		}
		if err := os.Remove(p); err != nil {
			return n, err
		}
	}
	return n, nil
}

// linkOrCopy hard-links from to to, or copies it across file systems,
// through a temporary name so that to is never half-written.
func linkOrCopy(from, to string) error {
	if err := os.Link(from, to); err == nil {
		return nil
	}
	tmp := to + ".imgbuild-tmp"
	if err := output.CopyFile(from, tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, to)
}

// file writes a file into the tree (path inside it).
func (b *build) file(p string, data string, mode fs.FileMode) error {
	full := filepath.Join(b.tree, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	if fi, err := os.Lstat(full); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if err := os.Remove(full); err != nil {
			return err
		}
	}
	if err := os.WriteFile(full, []byte(data), mode); err != nil {
		return fmt.Errorf("writing %s in the tree: %w", p, err)
	}
	return os.Chmod(full, mode)
}

func (b *build) exists(p string) bool {
	_, err := os.Lstat(filepath.Join(b.tree, p))
	return err == nil
}

// networkdConfig makes systemd-networkd configure Ethernet by DHCP.
const networkdConfig = `# Written by imgbuild (rootfs network = "dhcp").
[Match]
Type=ether
Name=en* eth*

[Network]
DHCP=yes
`

func (b *build) configure(ctx context.Context) error {
	host := b.cfg.Hostname
	if host == "" {
		host = sanitizeHostname(b.job.Name)
	}
	if err := b.file("etc/hostname", host+"\n", 0o644); err != nil {
		return err
	}
	hosts := "127.0.0.1\tlocalhost\n127.0.1.1\t" + host + "\n::1\t\tlocalhost ip6-localhost ip6-loopback\nff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n"
	if err := b.file("etc/hosts", hosts, 0o644); err != nil {
		return err
	}
	fstab, _ := os.ReadFile(filepath.Join(b.tree, "etc/fstab"))
	if len(bytes.TrimSpace(fstab)) == 0 || bytes.Contains(fstab, []byte("UNCONFIGURED FSTAB")) {
		if err := b.file("etc/fstab", "# Written by imgbuild: the root file system of the image.\nUUID="+b.uuid+"\t/\text4\terrors=remount-ro\t0\t1\n", 0o644); err != nil {
			return err
		}
	}
	if b.cfg.Network == "dhcp" {
		if !b.exists("usr/lib/systemd/system/systemd-networkd.service") && !b.exists("lib/systemd/system/systemd-networkd.service") {
			b.job.UI.Say("network = \"dhcp\": systemd is not installed in the tree (add systemd-sysv to packages for a bootable image), so networking is left alone")
			return nil
		}
		if err := b.file("etc/systemd/network/80-imgbuild-dhcp.network", networkdConfig, 0o644); err != nil {
			return err
		}
		var out bytes.Buffer
		status, err := b.comm.Run(ctx, &engine.Command{Command: "systemctl enable systemd-networkd.service", Stdout: &out, Stderr: &out})
		if err != nil {
			return err
		}
		if status != 0 {
			return fmt.Errorf("enabling systemd-networkd in the tree failed (status %d): %s", status, strings.TrimSpace(out.String()))
		}
		b.job.UI.Say("networking: systemd-networkd, DHCP on every Ethernet interface")
	}
	return nil
}

func sanitizeHostname(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' {
			b.WriteRune(r)
		} else {
			b.WriteRune('-')
		}
	}
	h := strings.Trim(b.String(), "-")
	if len(h) > 63 {
		h = h[:63]
	}
	if h == "" {
		h = "debian"
	}
	return h
}

// sshKeysUnit makes the SSH host keys the image was made without on its
// first boot, before the SSH server starts.
const sshKeysUnit = `# Written by imgbuild: the image was made without SSH host keys, so that
# every machine made from it has its own.
[Unit]
Description=Generate the SSH host keys of this machine
Before=ssh.service
ConditionPathExistsGlob=!/etc/ssh/ssh_host_*_key

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=ssh.service
`

// generalize makes the tree an image: what identifies one machine goes.
func (b *build) generalize(ctx context.Context) error {
	if err := b.closeChroot(); err != nil {
		return err
	}
	if n, err := b.keepPackages(); err != nil {
		return err
	} else if n > 0 {
		b.job.UI.Say("%d packages apt downloaded kept in the package cache %s", n, b.cache)
	}
	if p := filepath.Join(b.tree, "usr/sbin/policy-rc.d"); b.exists("usr/sbin/policy-rc.d") {
		if data, _ := os.ReadFile(p); strings.Contains(string(data), "Written by imgbuild") {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
	}
	var done []string
	if fi, err := os.Lstat(filepath.Join(b.tree, "etc/machine-id")); err == nil && fi.Mode().IsRegular() {
		if err := os.Truncate(filepath.Join(b.tree, "etc/machine-id"), 0); err != nil {
			return err
		}
		done = append(done, "machine-id emptied")
	}
	if fi, err := os.Lstat(filepath.Join(b.tree, "var/lib/dbus/machine-id")); err == nil && fi.Mode().IsRegular() {
		p := filepath.Join(b.tree, "var/lib/dbus/machine-id")
		if err := os.Remove(p); err != nil {
			return err
		}
		if err := os.Symlink("/etc/machine-id", p); err != nil {
			return err
		}
	}
	keys, _ := filepath.Glob(filepath.Join(b.tree, "etc/ssh/ssh_host_*"))
	for _, k := range keys {
		if err := os.Remove(k); err != nil {
			return err
		}
	}
	if len(keys) > 0 {
		done = append(done, fmt.Sprintf("%d SSH host key files removed", len(keys)))
	}
	if b.exists("usr/sbin/sshd") && (b.exists("usr/lib/systemd/system/ssh.service") || b.exists("lib/systemd/system/ssh.service")) {
		unit := "etc/systemd/system/imgbuild-ssh-host-keys.service"
		if err := b.file(unit, sshKeysUnit, 0o644); err != nil {
			return err
		}
		wants := filepath.Join(b.tree, "etc/systemd/system/ssh.service.wants")
		if err := os.MkdirAll(wants, 0o755); err != nil {
			return err
		}
		link := filepath.Join(wants, "imgbuild-ssh-host-keys.service")
		os.Remove(link)
		if err := os.Symlink("/"+unit, link); err != nil {
			return err
		}
		done = append(done, "SSH host keys made on first boot")
	}
	if host, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		p := filepath.Join(b.tree, "etc/resolv.conf")
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			if got, _ := os.ReadFile(p); bytes.Equal(got, host) {
				os.Remove(p)
			}
		}
	}
	if !b.epoch.IsZero() {
		n, err := ClampMtimes(ctx, b.tree, b.epoch)
		if err != nil {
			return err
		}
		done = append(done, fmt.Sprintf("%d modification times clamped to SOURCE_DATE_EPOCH", n))
	}
	if len(done) > 0 {
		b.job.UI.Say("generalized: %s", strings.Join(done, ", "))
	}
	return nil
}

// findKernel returns the tree's kernel and initrd (paths inside the tree),
// the newest when there are several; "" when there is none.
func (b *build) findKernel() (kernel, initrd string) {
	for _, l := range [][2]string{{"vmlinuz", "initrd.img"}, {"boot/vmlinuz", "boot/initrd.img"}} {
		p := filepath.Join(b.tree, l[0])
		if target, err := os.Readlink(p); err == nil {
			k := filepath.Join(filepath.Dir(l[0]), target)
			if !filepath.IsAbs(target) {
				k = filepath.Clean(k)
			} else {
				k = strings.TrimPrefix(target, "/")
			}
			if _, err := os.Stat(filepath.Join(b.tree, k)); err == nil {
				kernel = k
				break
			}
		}
	}
	if kernel == "" {
		ks, _ := filepath.Glob(filepath.Join(b.tree, "boot/vmlinuz-*"))
		if len(ks) == 0 {
			return "", ""
		}
		sort.Slice(ks, func(i, j int) bool { return versionLess(ks[i], ks[j]) })
		kernel, _ = filepath.Rel(b.tree, ks[len(ks)-1])
	}
	version := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	if i := filepath.Join(b.tree, "boot/initrd.img-"+version); fileExists(i) {
		initrd = "boot/initrd.img-" + version
	}
	return kernel, initrd
}

func fileExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// versionParts splits a name into runs of digits and of the rest.
var versionParts = regexp.MustCompile(`\d+|\D+`)

// versionLess orders kernel file names by their numeric parts.
func versionLess(a, b string) bool {
	pa, pb := versionParts.FindAllString(a, -1), versionParts.FindAllString(b, -1)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		na, ea := strconv.Atoi(pa[i])
		nb, eb := strconv.Atoi(pb[i])
		if ea == nil && eb == nil {
			return na < nb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}

// begin returns the temporary name an output is written under until done
// moves it into place.
func (b *build) begin(kind string) (string, error) { return b.out.Begin(b.outputName(kind)) }

// done moves an output into place and returns its path.
func (b *build) done(kind string) (string, error) { return b.out.Done(b.outputName(kind)) }

func (b *build) images(ctx context.Context) error {
	// The kernel and initrd, for direct boot.
	kernel, initrd := b.findKernel()
	if kernel == "" {
		b.job.UI.Say("no kernel in the tree: add linux-image-amd64 to packages to boot the image directly")
	} else {
		for _, c := range []struct {
			from, kind string
			into       *string
		}{{kernel, "kernel", &b.kernel}, {initrd, "initrd", &b.initrd}} {
			if c.from == "" {
				continue
			}
			tmp, err := b.begin(c.kind)
			if err != nil {
				return err
			}
			if err := output.CopyFile(filepath.Join(b.tree, c.from), tmp); err != nil {
				return fmt.Errorf("copying /%s out of the tree: %w", c.from, err)
			}
			if *c.into, err = b.done(c.kind); err != nil {
				return err
			}
		}
		b.job.UI.Say("kernel /%s and initrd /%s copied to %s for direct boot", kernel, initrd, b.display(b.out.Path))
	}
	if b.wants("tar") {
		start := time.Now()
		tmp, err := b.begin("tar")
		if err != nil {
			return err
		}
		if err := b.writeTar(ctx, tmp); err != nil {
			return err
		}
		if b.tarPath, err = b.done("tar"); err != nil {
			return err
		}
		b.job.UI.Say("tar %s made in %s", b.display(b.tarPath), time.Since(start).Round(100*time.Millisecond))
	}
	if b.wants("raw") || b.wants("qcow2") {
		raw := filepath.Join(b.job.WorkDir, "disk.raw")
		if b.wants("raw") {
			var err error
			if raw, err = b.begin("raw"); err != nil {
				return err
			}
		}
		start := time.Now()
		u, _ := TreeUsage(ctx, b.tree)
		b.job.UI.Say("making a %s ext4 file system (UUID %s) of %d files taking %s", qemuimg.FormatSize(b.size), b.uuid, u.Files, qemuimg.HumanSize(u.Bytes))
		err := MakeExt4(ctx, b.tree, raw, Ext4Options{Size: b.size, Label: "root", UUID: b.uuid, Epoch: b.epoch, Output: b.job.UI.Lines("stderr")})
		if err != nil {
			return err
		}
		b.job.UI.Say("ext4 file system made in %s", time.Since(start).Round(100*time.Millisecond))
		b.disk, b.format = raw, "raw"
		if b.wants("raw") {
			if raw, err = b.done("raw"); err != nil {
				return err
			}
			b.disk = raw
		}
		if b.wants("qcow2") {
			start := time.Now()
			tmp, err := b.begin("qcow2")
			if err != nil {
				return err
			}
			err = qemuimg.Convert(ctx, qemuimg.ConvertOptions{In: raw, InFormat: "raw", Out: tmp, Format: "qcow2", Compress: b.cfg.Compress,
				Progress: func(done, total int64) { b.job.UI.Progress("qcow2", done, total, "%") }})
			if err != nil {
				return err
			}
			final, err := b.done("qcow2")
			if err != nil {
				return err
			}
			if !b.wants("raw") {
				os.Remove(raw)
			}
			b.disk, b.format = final, "qcow2"
			b.job.UI.Say("qcow2 %s made in %s", b.display(final), time.Since(start).Round(100*time.Millisecond))
		}
	}
	sumOf := b.disk
	if sumOf == "" {
		sumOf = b.tarPath
	}
	sum, err := qemuimg.SHA256(ctx, sumOf)
	if err != nil {
		return fmt.Errorf("checksumming %s: %w", b.display(sumOf), err)
	}
	b.checksum = "sha256:" + sum
	return nil
}

func (b *build) writeTar(ctx context.Context, p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = WriteTar(ctx, b.tree, f, b.epoch, func(done, total int64) { b.job.UI.Progress("tar", done, total, "bytes") })
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
		return fmt.Errorf("making %s: %w", b.display(p), err)
	}
	return nil
}

// removeOutputs removes what the build wrote, when it failed.
func (b *build) removeOutputs(ctx context.Context, failed bool) error {
	return b.out.Cleanup(failed)
}

func (b *build) artifact() *engine.Artifact {
	show := func(p string) string {
		if p == "" {
			return ""
		}
		return b.display(p)
	}
	files := b.out.Files()
	id := show(b.disk)
	if id == "" {
		id = show(b.tarPath)
	}
	cmdline := ""
	if b.disk != "" {
		cmdline = "root=UUID=" + b.uuid + " ro console=tty0 console=ttyS0,115200n8"
	}
	return &engine.Artifact{
		ID:       id,
		Platform: "local",
		Files:    files,
		Fields: map[string]any{
			"disk":      show(b.disk),
			"format":    b.format,
			"kernel":    show(b.kernel),
			"initrd":    show(b.initrd),
			"append":    cmdline,
			"checksum":  b.checksum,
			"tar":       show(b.tarPath),
			"directory": b.display(b.out.Path),
		},
	}
}

// tailWriter keeps the last n lines written to it.
type tailWriter struct {
	n     int
	lines []string
	part  []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.part = append(t.part, p...)
	for {
		i := bytes.IndexByte(t.part, '\n')
		if i < 0 {
			break
		}
		t.lines = append(t.lines, string(t.part[:i]))
		if len(t.lines) > t.n {
			t.lines = t.lines[1:]
		}
		t.part = t.part[i+1:]
	}
	return len(p), nil
}

func (t *tailWriter) String() string { return strings.Join(t.lines, "\n") }

// lastLinesOf returns the last n lines of a file, "" when unreadable.
func lastLinesOf(p string, n int) string {
	data, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	return lastLines(string(data), n)
}
