package vsphere

import (
	"fmt"
	"net"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/imgbuild/imgbuild/drivers/bootcmd"
	"github.com/imgbuild/imgbuild/drivers/httpserve"
	"github.com/imgbuild/imgbuild/drivers/iso"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine/schema"
)

// Connection are the keywords that say which vCenter to log in to, shared
// by vsphere_clone and vsphere_iso. Unset keywords take govc's environment
// variables when the build runs (see connectionFromEnv), so that a govc user
// needs no new habits.
type Connection struct {
	VCenterServer      string `kw:"vcenter_server" doc:"vCenter (or ESXi) to build on: a host name, host:port or https:// URL. Unset: $GOVC_URL."`
	Username           string `kw:"username" doc:"User to log in as. Unset: $GOVC_USERNAME, or the user in GOVC_URL."`
	Password           string `kw:"password,sensitive" doc:"Password of username. Unset: $GOVC_PASSWORD, or the password in GOVC_URL."`
	InsecureConnection *bool  `kw:"insecure_connection" doc:"Do not verify vCenter's TLS certificate. Unset: $GOVC_INSECURE, else False."`
	Datacenter         string `kw:"datacenter" doc:"Datacenter to build in. Unset: $GOVC_DATACENTER, else the only one there is."`
}

// Location says where the VM is made and under which name.
type Location struct {
	VMName       string `kw:"vm_name" doc:"Name of the VM (and of the template it becomes). Unset: the build's name."`
	Folder       string `kw:"folder" doc:"VM folder to put it in, relative to the datacenter's VM folder (\"templates/linux\"). Unset: the VM folder itself."`
	Cluster      string `kw:"cluster" doc:"Cluster to run the VM in (its root resource pool unless resource_pool is set)."`
	Host         string `kw:"host" doc:"ESXi host to run the VM on (within cluster when both are set)."`
	ResourcePool string `kw:"resource_pool" doc:"Resource pool: a path under the cluster's or host's pool (\"builds/linux\"), or a full inventory path."`
	Datastore    string `kw:"datastore" doc:"Datastore for the VM's files. Unset: the template's (vsphere_clone), or the only one the host or cluster sees."`
	Force        bool   `kw:"force" doc:"Replace a VM or template already named vm_name. The new one is built under a temporary name; the old one is removed only once the build succeeded."`
}

// Hardware are the virtual hardware keywords both builders share.
type Hardware struct {
	CPUs                    int               `kw:"CPUs" doc:"Number of virtual CPUs. 0: the template's (vsphere_clone), 1 (vsphere_iso)."`
	CPUCores                int               `kw:"cpu_cores" doc:"CPU cores per socket; CPUs must be a multiple. 0: leave as is."`
	RAM                     int               `kw:"RAM" doc:"Memory in MiB, a multiple of 4. 0: the template's (vsphere_clone), 1024 (vsphere_iso)."`
	Notes                   string            `kw:"notes" doc:"The VM's notes (annotation)."`
	ConfigurationParameters map[string]string `kw:"configuration_parameters" doc:"Advanced settings (VMX ExtraConfig) to set: key → value."`
}

// Finish are the keywords of what both builders do once the VM exists:
// reach it, provision it, shut it down and capture it.
type Finish struct {
	SSH ssh.Options `kw:",squash"`

	IPWaitTimeout   time.Duration `kw:"ip_wait_timeout" default:"30m" doc:"How long to wait for VMware Tools to report the guest's IP address (not used when ssh_host is set)."`
	IPSettleTimeout time.Duration `kw:"ip_settle_timeout" default:"5s" doc:"How long the reported address must stay the same before it is used (DHCP may change it early)."`
	IPWaitAddress   string        `kw:"ip_wait_address" default:"0.0.0.0/0" doc:"Network (CIDR) the address to connect to must be in, when the guest has several."`

	ShutdownCommand string        `kw:"shutdown_command" doc:"Command run over SSH to shut the guest down (\"sudo systemctl poweroff\"). Unset: a guest shutdown through VMware Tools."`
	ShutdownTimeout time.Duration `kw:"shutdown_timeout" default:"5m" doc:"How long to wait for the VM to power off after asking it to."`

	CreateSnapshot    bool   `kw:"create_snapshot" doc:"Take a snapshot of the VM once it is shut down (linked clones of it need one)."`
	SnapshotName      string `kw:"snapshot_name" default:"imgbuild" doc:"Name of that snapshot."`
	ConvertToTemplate bool   `kw:"convert_to_template" doc:"Turn the VM into a template once it is shut down."`

	Export         *Export         `kw:"export" doc:"Also export the VM to files on this machine: {\"output_directory\": \"out/web\", \"format\": \"ova\"}."`
	ContentLibrary *ContentLibrary `kw:"content_library_destination" doc:"Also import the VM into a content library: {\"library\": \"images\", \"ovf\": True}."`
	Destroy        bool            `kw:"destroy" doc:"Remove the VM once it was exported or imported into a content library (one of them must be set)."`
}

// Export says how to export the VM to files.
type Export struct {
	OutputDirectory string `kw:"output_directory" default:"output/{build}" path:"output" doc:"Directory for the files, relative to the workspace ({build} is the build's name). A previous export of this build is replaced; a directory holding files imgbuild did not make is refused."`
	Name            string `kw:"name" doc:"Base name of the files (<name>.ovf, <name>.ova). Unset: vm_name."`
	Format          string `kw:"format" enum:"ovf|ova" default:"ovf" doc:"ovf: a descriptor, the disks and a manifest side by side; ova: the same in one tar file."`
	Manifest        string `kw:"manifest" enum:"sha256|sha512|none" default:"sha256" doc:"Checksum algorithm of the manifest (.mf), or none."`
	Force           bool   `kw:"force" doc:"Also replace an output directory imgbuild made for another build (what imgbuild did not make is never replaced)."`
}

// ContentLibrary says where in a content library to import the VM.
type ContentLibrary struct {
	Library     string `kw:"library,required" doc:"Name of the (local) content library."`
	Name        string `kw:"name" doc:"Name of the library item. Unset: vm_name."`
	Description string `kw:"description" doc:"Description of the library item."`
	OVF         bool   `kw:"ovf" doc:"Import as an OVF package (portable, deployable anywhere) instead of a VM template (VMTX)."`
}

// CloneConfig is vsphere_clone's configuration.
type CloneConfig struct {
	Connection Connection `kw:",squash"`
	Location   Location   `kw:",squash"`

	Template    string `kw:"template,required" doc:"VM or template to clone: a name or an inventory path (\"templates/debian-12\")."`
	LinkedClone bool   `kw:"linked_clone" doc:"Make a linked clone: its disks are deltas on the template's current snapshot (fast, small; the template needs a snapshot)."`

	Hardware  Hardware   `kw:",squash"`
	DiskSize  int        `kw:"disk_size" doc:"Grow the first disk to this many MiB. 0: keep the template's size."`
	Network   string     `kw:"network" doc:"Network (port group) to connect the first network adapter to. Unset: the template's."`
	Customize *Customize `kw:"customize" doc:"Guest customization through VMware Tools: {\"linux_options\": {...}, \"network_interface\": [...]}."`

	Finish Finish `kw:",squash"`
}

// Customize is a guest customization spec.
type Customize struct {
	LinuxOptions      LinuxOptions       `kw:"linux_options" doc:"Host name, domain and time zone."`
	NetworkInterfaces []NetworkInterface `kw:"network_interface" doc:"Addresses, one entry per network adapter in order. Unset: DHCP on every adapter."`
	IPv4Gateway       string             `kw:"ipv4_gateway" doc:"Default IPv4 gateway."`
	DNSServers        []string           `kw:"dns_server_list" doc:"DNS servers."`
	DNSSuffixes       []string           `kw:"dns_suffix_list" doc:"DNS search domains."`
}

// LinuxOptions are the Linux customization's identity settings.
type LinuxOptions struct {
	HostName   string `kw:"host_name" doc:"Host name. Unset: vm_name."`
	Domain     string `kw:"domain" default:"localdomain" doc:"DNS domain."`
	TimeZone   string `kw:"time_zone" doc:"Time zone (\"Europe/Berlin\"). Unset: leave as is."`
	HWClockUTC bool   `kw:"hw_clock_utc" default:"True" doc:"Whether the hardware clock is in UTC."`
}

// NetworkInterface is one network adapter's customization.
type NetworkInterface struct {
	IPv4Address string   `kw:"ipv4_address" doc:"Fixed IPv4 address. Unset: DHCP."`
	IPv4Netmask int      `kw:"ipv4_netmask" default:"24" doc:"Prefix length of the address (24 for 255.255.255.0)."`
	DNSServers  []string `kw:"dns_server_list" doc:"DNS servers for this adapter."`
	DNSDomain   string   `kw:"dns_domain" doc:"DNS domain for this adapter."`
}

// ISOConfig is vsphere_iso's configuration.
type ISOConfig struct {
	Connection Connection `kw:",squash"`
	Location   Location   `kw:",squash"`

	GuestOSType string   `kw:"guest_os_type" default:"otherGuest64" doc:"vSphere guest OS identifier (\"debian12_64Guest\", \"rhel9_64Guest\")."`
	Firmware    string   `kw:"firmware" enum:"bios|efi|efi-secure" default:"bios" doc:"Firmware: bios, efi, or efi with secure boot."`
	Hardware    Hardware `kw:",squash"`

	DiskControllerType string           `kw:"disk_controller_type" enum:"pvscsi|lsilogic|lsilogic-sas|buslogic|nvme" default:"pvscsi" doc:"Controller the disks are attached to."`
	Storage            []Disk           `kw:"storage" doc:"Disks, in order: [{\"disk_size\": 20480, \"thin\": True}]."`
	NetworkAdapters    []NetworkAdapter `kw:"network_adapters" doc:"Network adapters, in order: [{\"network\": \"VM Network\"}]."`

	CDROMType   string   `kw:"cdrom_type" enum:"ide|sata" default:"ide" doc:"Controller type of the CD-ROM drives."`
	ISOPaths    []string `kw:"iso_paths" doc:"ISO images already on a datastore, one CD-ROM each: [\"[datastore1] iso/debian-12.iso\"]."`
	ISOURL      string   `kw:"iso_url" doc:"ISO image to download (http, https, file or a workspace path) and upload to the VM's datastore for this build."`
	ISOChecksum string   `kw:"iso_checksum" doc:"Checksum of iso_url, checked before it is uploaded: \"sha256:<hex>\" (sha512:, sha1:, md5:), \"file:<path or URL>\" of a SHA256SUMS-style list holding the ISO's name, or \"none\" (a warning). Downloads are kept in a cache every run shares ($IMGBUILD_CACHE_DIR, else ~/.cache/imgbuild)."`
	RemoveCDROM bool     `kw:"remove_cdrom" default:"True" doc:"Remove the CD-ROM drives before the VM is captured."`

	BootCommand     []string      `kw:"boot_command" doc:"Keys to type at the installer's boot prompt: text, <enter>, <wait5>, <leftCtrlOn>..., and {http_ip}, {http_port}, {http_url}, {name} (or {vm_name})."`
	BootWait        time.Duration `kw:"boot_wait" default:"10s" doc:"How long to wait after power-on before typing boot_command."`
	BootKeyInterval time.Duration `kw:"boot_key_interval" doc:"Pause between keys; 0 sends each run of keys between waits at once."`

	HTTPDirectory string            `kw:"http_directory" path:"dir" doc:"Directory served over HTTP to the installer (preseed, kickstart), at {http_url}/."`
	HTTPContent   map[string]string `kw:"http_content" doc:"Files served over HTTP: path → content (\"/preseed.cfg\": ...). The build's SSH public key is served at /.imgbuild/authorized_keys."`
	HTTPIP        string            `kw:"http_ip" doc:"Address the HTTP server listens on and boot_command names. Unset: this machine's address on the way to vCenter."`
	HTTPPort      int               `kw:"http_port" doc:"Port of the HTTP server. 0: any free port."`

	Finish Finish `kw:",squash"`
}

// Disk is one disk of a vsphere_iso VM.
type Disk struct {
	DiskSize int  `kw:"disk_size,required" doc:"Size in MiB."`
	Thin     bool `kw:"thin" default:"True" doc:"Thin provisioned (allocated as written)."`
}

// NetworkAdapter is one network adapter of a vsphere_iso VM.
type NetworkAdapter struct {
	Network     string `kw:"network,required" doc:"Network (port group) to connect it to."`
	NetworkCard string `kw:"network_card" enum:"vmxnet3|e1000|e1000e" default:"vmxnet3" doc:"Adapter type."`
	MACAddress  string `kw:"mac_address" doc:"Fixed MAC address. Unset: generated."`
}

// Validate implements schema.Validator.
func (c *CloneConfig) Validate(deferred schema.Deferred) error {
	if err := c.Connection.validate(deferred); err != nil {
		return err
	}
	if err := c.Location.validate(deferred); err != nil {
		return err
	}
	if err := c.Hardware.validate(deferred); err != nil {
		return err
	}
	if c.DiskSize < 0 {
		return schema.Errorf("disk_size", "%d is negative", c.DiskSize)
	}
	if c.LinkedClone && c.DiskSize > 0 {
		return schema.Errorf("disk_size", "cannot be used with linked_clone: a linked clone's disk is a delta on the template's and keeps its size")
	}
	if c.Customize != nil {
		if err := c.Customize.validate(); err != nil {
			return err
		}
	}
	return c.Finish.validate(deferred)
}

// Validate implements schema.Validator.
func (c *ISOConfig) Validate(deferred schema.Deferred) error {
	if err := c.Connection.validate(deferred); err != nil {
		return err
	}
	if err := c.Location.validate(deferred); err != nil {
		return err
	}
	if err := c.Hardware.validate(deferred); err != nil {
		return err
	}
	if len(c.Storage) == 0 {
		return schema.Errorf("storage", "is empty: vsphere_iso needs a disk to install on, such as storage = [{\"disk_size\": 20480}]")
	}
	for i, d := range c.Storage {
		if d.DiskSize <= 0 {
			return schema.Errorf("storage", "disk %d: disk_size must be more than 0 (MiB)", i)
		}
	}
	for i, n := range c.NetworkAdapters {
		if n.MACAddress != "" {
			if _, err := net.ParseMAC(n.MACAddress); err != nil {
				return schema.Errorf("network_adapters", "adapter %d: mac_address %q is not a MAC address (00:50:56:aa:bb:cc)", i, n.MACAddress)
			}
		}
	}
	for i, p := range c.ISOPaths {
		if !deferred.Has("iso_paths") && !datastorePathRe.MatchString(p) {
			return schema.Errorf("iso_paths", "element %d: %q is not a datastore path: write \"[datastore] folder/file.iso\"", i, p)
		}
	}
	if c.ISOURL != "" && !deferred.Has("iso_checksum") {
		if c.ISOChecksum == "" {
			return schema.Errorf("iso_checksum", "is required with iso_url: \"sha256:<hex>\", \"file:SHA256SUMS\" (or \"none\" to skip the check)")
		}
		if _, err := iso.ParseChecksum(c.ISOChecksum); err != nil {
			return schema.Errorf("iso_checksum", "%v", err)
		}
	}
	if c.ISOChecksum != "" && c.ISOURL == "" && !deferred.Has("iso_url") {
		return schema.Errorf("iso_checksum", "is set but iso_url is not: the checksum is that file's")
	}
	if err := bootcmd.Check(c.BootCommand, c.HTTPDirectory != "" || len(c.HTTPContent) > 0, deferred); err != nil {
		return err
	}
	if err := httpserve.CheckContent(c.HTTPContent); err != nil {
		return err
	}
	if c.HTTPIP != "" && !deferred.Has("http_ip") && net.ParseIP(c.HTTPIP) == nil {
		return schema.Errorf("http_ip", "%q is not an IP address", c.HTTPIP)
	}
	if c.HTTPPort < 0 || c.HTTPPort > 65535 {
		return schema.Errorf("http_port", "%d is not a TCP port (0 to 65535)", c.HTTPPort)
	}
	return c.Finish.validate(deferred)
}

var datastorePathRe = regexp.MustCompile(`^\[[^\]]+\] ?\S.*$`)

func (c *Connection) validate(deferred schema.Deferred) error {
	if c.VCenterServer != "" && !deferred.Has("vcenter_server") {
		if _, err := serverURL(c.VCenterServer); err != nil {
			return schema.Errorf("vcenter_server", "%v", err)
		}
	}
	return nil
}

func (l *Location) validate(deferred schema.Deferred) error {
	if !deferred.Has("vm_name") && l.VMName != "" {
		if err := checkVMName(l.VMName); err != nil {
			return schema.Errorf("vm_name", "%v", err)
		}
	}
	if !deferred.Has("folder") && (strings.HasPrefix(l.Folder, "/") || strings.Contains(l.Folder, "..")) {
		return schema.Errorf("folder", "%q must be a path relative to the datacenter's VM folder, such as \"templates/linux\"", l.Folder)
	}
	return nil
}

// checkVMName checks a VM name vSphere accepts and that reads back the
// same in an inventory path.
func checkVMName(n string) error {
	switch {
	case strings.TrimSpace(n) != n || n == "":
		return fmt.Errorf("%q has leading or trailing blanks", n)
	case len(n) > 80:
		return fmt.Errorf("%q is longer than 80 characters, vSphere's limit", n)
	case strings.ContainsAny(n, "/\\%"):
		return fmt.Errorf("%q contains / \\ or %%, which vSphere escapes in inventory paths", n)
	}
	return nil
}

func (h *Hardware) validate(deferred schema.Deferred) error {
	switch {
	case h.CPUs < 0:
		return schema.Errorf("CPUs", "%d is negative", h.CPUs)
	case h.CPUCores < 0:
		return schema.Errorf("cpu_cores", "%d is negative", h.CPUCores)
	case h.CPUs > 0 && h.CPUCores > 0 && h.CPUs%h.CPUCores != 0:
		return schema.Errorf("cpu_cores", "CPUs (%d) must be a multiple of cpu_cores (%d)", h.CPUs, h.CPUCores)
	case h.RAM < 0:
		return schema.Errorf("RAM", "%d is negative", h.RAM)
	case h.RAM%4 != 0:
		return schema.Errorf("RAM", "%d MiB is not a multiple of 4, which vSphere requires", h.RAM)
	}
	for k := range h.ConfigurationParameters {
		if strings.TrimSpace(k) == "" {
			return schema.Errorf("configuration_parameters", "a key is empty")
		}
		if strings.HasPrefix(k, markerKey) || strings.HasPrefix(k, "guestinfo.imgbuild.") {
			return schema.Errorf("configuration_parameters", "%q is set by imgbuild itself", k)
		}
	}
	return nil
}

var hostNameRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func (c *Customize) validate() error {
	lo := c.LinuxOptions
	if lo.HostName != "" && !hostNameRe.MatchString(lo.HostName) {
		return schema.Errorf("customize", "linux_options: host_name %q is not a host name (letters, digits and -, at most 63)", lo.HostName)
	}
	if strings.ContainsAny(lo.TimeZone, " \t") {
		return schema.Errorf("customize", "linux_options: time_zone %q is not a time zone name such as \"Europe/Berlin\"", lo.TimeZone)
	}
	for i, n := range c.NetworkInterfaces {
		if n.IPv4Address != "" {
			ip := net.ParseIP(n.IPv4Address)
			if ip == nil || ip.To4() == nil {
				return schema.Errorf("customize", "network_interface %d: ipv4_address %q is not an IPv4 address", i, n.IPv4Address)
			}
			if n.IPv4Netmask < 1 || n.IPv4Netmask > 32 {
				return schema.Errorf("customize", "network_interface %d: ipv4_netmask %d is not a prefix length (1 to 32)", i, n.IPv4Netmask)
			}
		}
		for _, d := range n.DNSServers {
			if net.ParseIP(d) == nil {
				return schema.Errorf("customize", "network_interface %d: dns_server_list: %q is not an IP address", i, d)
			}
		}
	}
	if c.IPv4Gateway != "" {
		if ip := net.ParseIP(c.IPv4Gateway); ip == nil || ip.To4() == nil {
			return schema.Errorf("customize", "ipv4_gateway %q is not an IPv4 address", c.IPv4Gateway)
		}
	}
	for _, d := range c.DNSServers {
		if net.ParseIP(d) == nil {
			return schema.Errorf("customize", "dns_server_list: %q is not an IP address", d)
		}
	}
	return nil
}

func (f *Finish) validate(deferred schema.Deferred) error {
	if err := f.SSH.Validate(deferred, ssh.Require{HostKeyPolicy: true}); err != nil {
		return err
	}
	if f.IPWaitTimeout <= 0 {
		return schema.Errorf("ip_wait_timeout", "must be more than 0 (it is how long to wait for the guest's address)")
	}
	if _, _, err := net.ParseCIDR(f.IPWaitAddress); err != nil && !deferred.Has("ip_wait_address") {
		return schema.Errorf("ip_wait_address", "%q is not a network in CIDR form (\"10.0.0.0/8\", \"0.0.0.0/0\")", f.IPWaitAddress)
	}
	if f.ShutdownTimeout <= 0 {
		return schema.Errorf("shutdown_timeout", "must be more than 0")
	}
	if f.CreateSnapshot && strings.TrimSpace(f.SnapshotName) == "" {
		return schema.Errorf("snapshot_name", "must not be empty")
	}
	if f.Destroy {
		if f.Export == nil && f.ContentLibrary == nil {
			return schema.Errorf("destroy", "would leave nothing of the build: set export or content_library_destination, or keep the VM")
		}
		if f.ConvertToTemplate {
			return schema.Errorf("destroy", "contradicts convert_to_template: the template would be removed right after it was made")
		}
	}
	if e := f.Export; e != nil {
		if e.Name != "" {
			if err := checkVMName(e.Name); err != nil {
				return schema.Errorf("export", "name: %v", err)
			}
		}
	}
	if l := f.ContentLibrary; l != nil {
		if strings.TrimSpace(l.Library) == "" {
			return schema.Errorf("content_library_destination", "library must not be empty")
		}
		if l.Name != "" {
			if err := checkVMName(l.Name); err != nil {
				return schema.Errorf("content_library_destination", "name: %v", err)
			}
		}
	}
	return nil
}

// serverURL turns vcenter_server (or GOVC_URL) into the SDK endpoint URL:
// "vc.example.com" and "vc.example.com:8443" become
// https://vc.example.com[:8443]/sdk; a URL keeps its scheme and gets /sdk
// when it has no path. A user and password in the URL are kept.
func serverURL(s string) (*url.URL, error) {
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("is empty")
	}
	raw := s
	if !strings.Contains(s, "://") {
		raw = "https://" + s
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%q is not a host name, host:port or https:// URL", redactURL(s))
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return nil, fmt.Errorf("%q: the scheme must be https (or http)", redactURL(s))
	}
	if u.Path == "" || u.Path == "/" {
		u.Path = "/sdk"
	}
	u.Path = path.Clean(u.Path)
	return u, nil
}

// redactURL hides the password of a URL written as user:pass@host.
func redactURL(s string) string {
	if i := strings.Index(s, "@"); i >= 0 {
		if j := strings.Index(s, "://"); j >= 0 && j < i {
			return s[:j+3] + "…@" + s[i+1:]
		}
		return "…@" + s[i+1:]
	}
	return s
}
