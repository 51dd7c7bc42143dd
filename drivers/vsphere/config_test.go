package vsphere

import (
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// Keyword mistakes are caught when the description is evaluated, with the
// keyword named.

func minimalClone() map[string]any {
	return map[string]any{"template": "debian-12", "ssh_insecure_ignore_host_key": true}
}

func minimalISO() map[string]any {
	return map[string]any{"storage": []any{map[string]any{"disk_size": 1024}}, "ssh_insecure_ignore_host_key": true}
}

// with is base with the keywords of extra set, and those extra sets to
// nil removed.
func with(base map[string]any, extra map[string]any) map[string]any {
	for k, v := range extra {
		if v == nil {
			delete(base, k)
		} else {
			base[k] = v
		}
	}
	return base
}

func TestKeywordsAreCheckedWhenTheDescriptionIsRead(t *testing.T) {
	clone, iso := CloneDef(), ISODef()
	for _, tc := range []struct {
		def  *engine.BuilderDef
		kw   map[string]any
		want string
	}{
		{clone, with(minimalClone(), map[string]any{"template": nil}), `missing required keyword argument "template"`},
		{clone, with(minimalClone(), map[string]any{"ssh_insecure_ignore_host_key": nil}), "for parameter ssh_host_key: is needed to verify the machine: set ssh_host_key (its public key or SHA256: fingerprint, see ssh-keyscan), ssh_known_hosts (a known_hosts file), or ssh_insecure_ignore_host_key = True to skip verification"},
		{clone, with(minimalClone(), map[string]any{"vcenter_server": "ftp://vc"}), `for parameter vcenter_server: "ftp://vc": the scheme must be https (or http)`},
		{clone, with(minimalClone(), map[string]any{"vm_name": "a/b"}), `for parameter vm_name: "a/b" contains / \ or %, which vSphere escapes in inventory paths`},
		{clone, with(minimalClone(), map[string]any{"folder": "/vm/x"}), `for parameter folder: "/vm/x" must be a path relative to the datacenter's VM folder, such as "templates/linux"`},
		{clone, with(minimalClone(), map[string]any{"CPUs": 6, "cpu_cores": 4}), "for parameter cpu_cores: CPUs (6) must be a multiple of cpu_cores (4)"},
		{clone, with(minimalClone(), map[string]any{"RAM": 1023}), "for parameter RAM: 1023 MiB is not a multiple of 4, which vSphere requires"},
		{clone, with(minimalClone(), map[string]any{"linked_clone": true, "disk_size": 4096}), "for parameter disk_size: cannot be used with linked_clone: a linked clone's disk is a delta on the template's and keeps its size"},
		{clone, with(minimalClone(), map[string]any{"configuration_parameters": map[string]string{"imgbuild.build": "x"}}), `for parameter configuration_parameters: "imgbuild.build" is set by imgbuild itself`},
		{clone, with(minimalClone(), map[string]any{"customize": map[string]any{"network_interface": []any{map[string]any{"ipv4_address": "10.0.0.300"}}}}), `for parameter customize: network_interface 0: ipv4_address "10.0.0.300" is not an IPv4 address`},
		{clone, with(minimalClone(), map[string]any{"customize": map[string]any{"linux_options": map[string]any{"host_name": "web_1"}}}), `for parameter customize: linux_options: host_name "web_1" is not a host name (letters, digits and -, at most 63)`},
		{clone, with(minimalClone(), map[string]any{"customize": map[string]any{"linux_options": map[string]any{"hostname": "web"}}}), `for parameter customize: for parameter linux_options: unexpected keyword argument "hostname" (did you mean "host_name"?)`},
		{clone, with(minimalClone(), map[string]any{"ip_wait_address": "10.0.0.0"}), `for parameter ip_wait_address: "10.0.0.0" is not a network in CIDR form ("10.0.0.0/8", "0.0.0.0/0")`},
		{clone, with(minimalClone(), map[string]any{"destroy": true}), "for parameter destroy: would leave nothing of the build: set export or content_library_destination, or keep the VM"},
		{clone, with(minimalClone(), map[string]any{"destroy": true, "convert_to_template": true, "export": map[string]any{}}), "for parameter destroy: contradicts convert_to_template: the template would be removed right after it was made"},
		{clone, with(minimalClone(), map[string]any{"export": map[string]any{"format": "vmx"}}), `for parameter export: for parameter format: "vmx" is not one of "ovf", "ova"`},
		{clone, with(minimalClone(), map[string]any{"content_library_destination": map[string]any{"ovf": true}}), `for parameter content_library_destination: missing required keyword argument "library"`},
		{iso, with(minimalISO(), map[string]any{"storage": nil}), `for parameter storage: is empty: vsphere_iso needs a disk to install on, such as storage = [{"disk_size": 20480}]`},
		{iso, with(minimalISO(), map[string]any{"iso_url": "x.iso"}), `for parameter iso_checksum: is required with iso_url: "sha256:<hex>", "file:SHA256SUMS" (or "none" to skip the check)`},
		{iso, with(minimalISO(), map[string]any{"iso_url": "x.iso", "iso_checksum": "crc32:abc"}), `for parameter iso_checksum: "crc32:abc": the algorithm must be sha256, sha512, sha1 or md5, not "crc32" (or file: for a list of sums)`},
		{iso, with(minimalISO(), map[string]any{"iso_url": "x.iso", "iso_checksum": "sha256:abc"}), `for parameter iso_checksum: "sha256:abc": a sha256 checksum is 64 hexadecimal digits, not 3`},
		{iso, with(minimalISO(), map[string]any{"iso_paths": []string{"iso/debian.iso"}}), `for parameter iso_paths: element 0: "iso/debian.iso" is not a datastore path: write "[datastore] folder/file.iso"`},
		{iso, with(minimalISO(), map[string]any{"boot_command": []string{"<esc>{{ .HTTPIP }}"}}), `for parameter boot_command: at character 6: "{{ .HTTPIP }}" is Go template syntax, which boot_command does not use: write {http_ip}`},
		{iso, with(minimalISO(), map[string]any{"boot_command": []string{"url={http_url}<enter>"}}), "for parameter boot_command: uses {http_url} but no HTTP server runs: set http_directory or http_content"},
		{iso, with(minimalISO(), map[string]any{"firmware": "uefi"}), `for parameter firmware: "uefi" is not one of "bios", "efi", "efi-secure" (did you mean "efi"?)`},
		{iso, with(minimalISO(), map[string]any{"network_adapters": []any{map[string]any{"network": "VM Network", "mac_address": "00:50:56"}}}), `for parameter network_adapters: adapter 0: mac_address "00:50:56" is not a MAC address (00:50:56:aa:bb:cc)`},
		{iso, with(minimalISO(), map[string]any{"http_ip": "localhost"}), `for parameter http_ip: "localhost" is not an IP address`},
	} {
		_, err := decodeConfig(tc.def, tc.kw)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%v:\n got %v\nwant %s", tc.kw, err, tc.want)
		}
	}
}

func TestValidConfigsDecodeWithTheirDefaults(t *testing.T) {
	cfg, err := decodeConfig(CloneDef(), minimalClone())
	if err != nil {
		t.Fatal(err)
	}
	c := cfg.(*CloneConfig)
	if c.Finish.IPWaitTimeout.String() != "30m0s" || c.Finish.IPWaitAddress != "0.0.0.0/0" || c.Finish.ShutdownTimeout.String() != "5m0s" ||
		c.Finish.SSH.Port != 22 || c.Connection.InsecureConnection != nil {
		t.Errorf("defaults: %+v", c.Finish)
	}
	cfg, err = decodeConfig(ISODef(), with(minimalISO(), map[string]any{"network_adapters": []any{map[string]any{"network": "VM Network"}}}))
	if err != nil {
		t.Fatal(err)
	}
	i := cfg.(*ISOConfig)
	if i.GuestOSType != "otherGuest64" || i.Firmware != "bios" || !i.RemoveCDROM || i.BootWait.String() != "10s" ||
		!i.Storage[0].Thin || i.NetworkAdapters[0].NetworkCard != "vmxnet3" || i.DiskControllerType != "pvscsi" {
		t.Errorf("defaults: %+v", i)
	}
}

// A keyword whose value comes from another build is not checked until the
// build runs.
func TestDeferredKeywordsAreNotChecked(t *testing.T) {
	def := CloneDef()
	settings := settingsOf(minimalClone())
	settings.Set("template", &value.Template{Parts: []value.Part{{Ref: &value.Ref{Build: "base", Output: "template"}}}})
	settings.Set("vcenter_server", &value.Template{Parts: []value.Part{{Ref: &value.Ref{Build: "vc", Output: "id"}}}})
	cfg := def.Schema.New()
	deferred, err := def.Schema.Decode(settings, cfg, schema.Options{Deferred: true})
	if err != nil || !deferred.Has("template") || !deferred.Has("vcenter_server") {
		t.Errorf("deferred %v, err %v", deferred, err)
	}
}

func TestBothBuildersShareTheConnectionKeywordsAndDocumentEveryOne(t *testing.T) {
	clone, iso := CloneDef().Schema, ISODef().Schema
	for _, kw := range []string{"vcenter_server", "username", "password", "insecure_connection", "datacenter", "vm_name", "folder", "cluster", "host", "resource_pool", "datastore", "ssh_host", "ip_wait_timeout", "shutdown_command", "convert_to_template", "export", "content_library_destination", "destroy"} {
		c, ok1 := clone.Field(kw)
		i, ok2 := iso.Field(kw)
		if !ok1 || !ok2 || c.Doc != i.Doc {
			t.Errorf("%s: not declared once for both builders", kw)
		}
	}
	if f, _ := clone.Field("password"); !f.Sensitive {
		t.Errorf("password is not sensitive")
	}
	for _, s := range []*schema.Schema{clone, iso} {
		for _, f := range s.Fields {
			if f.Doc == "" {
				t.Errorf("%s: %s has no doc", s.Name, f.Keyword)
			}
		}
		docs := s.Docs()
		if !strings.HasPrefix(docs, s.Name+"(...)") {
			t.Errorf("docs:\n%s", docs)
		}
	}
	reg := engine.NewRegistry()
	Register(reg)
	for _, name := range []string{CloneName, ISOName} {
		def := reg.Builders[name]
		for _, out := range []string{"vm_name", "inventory_path", "moref", "template", "export_files", "library_item", "id", "files"} {
			if !def.HasOutput(out) {
				t.Errorf("%s has no output %s", name, out)
			}
		}
	}
}
