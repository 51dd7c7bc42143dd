package vsphere

import (
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/vmware/govmomi/vim25/types"

	"github.com/imgbuild/imgbuild/drivers/ssh"
)

// The build's SSH key reaches the guest through guestinfo, the advanced
// settings a guest reads with VMware Tools:
//
//   - guestinfo.userdata and guestinfo.metadata (base64) are a cloud-init
//     configuration for its VMware datasource: the key is authorized for
//     ssh_username. Cloud images and templates with cloud-init need nothing
//     else.
//   - guestinfo.imgbuild.authorized_key is the key as one authorized_keys
//     line, for guests without cloud-init: a kickstart or preseed can read
//     it with `vmtoolsd --cmd "info-get guestinfo.imgbuild.authorized_key"`
//     (vsphere_iso also serves it over HTTP at /.imgbuild/authorized_keys).
//
// All of them are removed once the VM is shut down, before it is captured.
const (
	guestinfoKey            = "guestinfo.imgbuild.authorized_key"
	guestinfoUserdata       = "guestinfo.userdata"
	guestinfoUserdataEnc    = "guestinfo.userdata.encoding"
	guestinfoMetadata       = "guestinfo.metadata"
	guestinfoMetadataEnc    = "guestinfo.metadata.encoding"
	cloudInitInstancePrefix = "imgbuild-"
)

// guestinfoKeys lists the settings guestinfo sets, for their removal.
func (b *buildEnv) guestinfoKeys() []string {
	keys := []string{guestinfoKey}
	if b.usesCloudInit() {
		keys = append(keys, guestinfoUserdata, guestinfoUserdataEnc, guestinfoMetadata, guestinfoMetadataEnc)
	}
	return keys
}

// usesCloudInit reports whether the build sets cloud-init's guestinfo: not
// when configuration_parameters brings its own.
func (b *buildEnv) usesCloudInit() bool {
	for k := range b.hw.ConfigurationParameters {
		if strings.HasPrefix(k, "guestinfo.userdata") || strings.HasPrefix(k, "guestinfo.metadata") {
			return false
		}
	}
	return true
}

// guestinfo returns the advanced settings that install the build's key.
func (b *buildEnv) guestinfo() []types.BaseOptionValue {
	return b.guestinfoFor(b.key, cloudInitInstancePrefix+b.id, hostLabel(b.name))
}

// guestinfoFor returns the advanced settings that install key in a guest
// that cloud-init knows as instance (a new instance id makes cloud-init
// install the keys again in a clone of an image it has run in).
func (b *buildEnv) guestinfoFor(key *ssh.Key, instance, hostname string) []types.BaseOptionValue {
	line := key.AuthorizedKey()
	out := []types.BaseOptionValue{&types.OptionValue{Key: guestinfoKey, Value: line}}
	if !b.usesCloudInit() {
		b.job.UI.Warn("configuration_parameters sets cloud-init's guestinfo itself: the build's SSH key is only in %s, make sure the guest installs it", guestinfoKey)
		return out
	}
	enc := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	out = append(out,
		&types.OptionValue{Key: guestinfoUserdata, Value: enc(b.cloudConfig(line))},
		&types.OptionValue{Key: guestinfoUserdataEnc, Value: "base64"},
		&types.OptionValue{Key: guestinfoMetadata, Value: enc(fmt.Sprintf("instance-id: %s\nlocal-hostname: %s\n", instance, hostname))},
		&types.OptionValue{Key: guestinfoMetadataEnc, Value: "base64"},
	)
	return out
}

// cloudConfig authorizes the key for ssh_username.
func (b *buildEnv) cloudConfig(keyLine string) string {
	user := b.fin.SSH.Username
	var s strings.Builder
	s.WriteString("#cloud-config\n")
	if user == "root" {
		s.WriteString("disable_root: false\n")
	}
	s.WriteString("users:\n  - default\n")
	fmt.Fprintf(&s, "  - name: %s\n", yamlQuote(user))
	fmt.Fprintf(&s, "    ssh_authorized_keys:\n      - %s\n", yamlQuote(keyLine))
	return s.String()
}

// yamlQuote quotes s as a YAML double-quoted scalar.
func yamlQuote(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// hostLabel turns a VM name into a host name label.
func hostLabel(name string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	s := strings.Trim(b.String(), "-")
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	if s == "" {
		s = "imgbuild"
	}
	return s
}
