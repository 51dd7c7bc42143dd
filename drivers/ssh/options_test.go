package ssh

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

const (
	edKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAEjrgyGpqz4HplVVndae5VTRsukm2IFxexT5Fis8Z5z"
	edFP  = "SHA256:YT9q8jV0x/N5WCg7Jg/ckN9pKZ/RK09p8m2lS58P1xE"
)

func TestOptionsAreDeclaredOnceWithTheirDefaults(t *testing.T) {
	s := schema.Of("null", "", &struct {
		SSH Options `kw:",squash"`
	}{})
	want := []string{"ssh_host", "ssh_port", "ssh_username", "ssh_password", "ssh_private_key_file",
		"ssh_private_key_passphrase", "ssh_agent_auth", "ssh_certificate_file", "ssh_host_key", "ssh_known_hosts",
		"ssh_insecure_ignore_host_key", "ssh_timeout", "ssh_handshake_attempts", "ssh_keep_alive_interval",
		"ssh_bastion_host", "ssh_bastion_port", "ssh_bastion_username", "ssh_bastion_password",
		"ssh_bastion_private_key_file", "ssh_bastion_agent_auth", "ssh_bastion_host_key"}
	if got := strings.Join(s.Keywords(), " "); got != strings.Join(want, " ") {
		t.Fatalf("keywords %s", got)
	}
	for _, f := range s.Fields {
		if f.Doc == "" {
			t.Errorf("%s has no doc", f.Keyword)
		}
	}
	for _, kw := range []string{"ssh_password", "ssh_private_key_passphrase", "ssh_bastion_password"} {
		if f, _ := s.Field(kw); !f.Sensitive {
			t.Errorf("%s is not sensitive", kw)
		}
	}
	d := Defaults()
	if d.Port != 22 || d.Username != "root" || d.Timeout != 5*time.Minute || d.HandshakeAttempts != 10 ||
		d.KeepAliveInterval != 5*time.Second || d.BastionPort != 22 {
		t.Errorf("Defaults() = %+v", d)
	}
}

func TestValidate(t *testing.T) {
	all := Require{Host: true, HostKeyPolicy: true, Credentials: true}
	ok := func(o *Options) {}
	for _, tc := range []struct {
		name     string
		req      Require
		deferred []string
		set      func(o *Options)
		kw, msg  string // "" means valid
	}{
		{"complete", all, nil, ok, "", ""},
		{"a launching driver needs nothing", Require{}, nil, func(o *Options) { o.Host, o.HostKey, o.PrivateKeyFile = "", "", "" }, "", ""},
		{"host missing", all, nil, func(o *Options) { o.Host = "" }, "ssh_host", "is required"},
		{"host from another build", all, []string{"ssh_host"}, func(o *Options) { o.Host = "${base.ip}" }, "", ""},
		{"bad port", all, nil, func(o *Options) { o.Port = 70000 }, "ssh_port", "70000 is not a TCP port"},
		{"zero timeout", all, nil, func(o *Options) { o.Timeout = 0 }, "ssh_timeout", "must be more than 0"},
		{"zero handshake attempts", all, nil, func(o *Options) { o.HandshakeAttempts = 0 }, "ssh_handshake_attempts", "0 is less than 1"},
		{"no host key policy", all, nil, func(o *Options) { o.HostKey = "" }, "ssh_host_key",
			"is needed to verify the machine: set ssh_host_key (its public key or SHA256: fingerprint, see ssh-keyscan), ssh_known_hosts (a known_hosts file), or ssh_insecure_ignore_host_key = True"},
		{"fingerprint", all, nil, func(o *Options) { o.HostKey = edFP }, "", ""},
		{"known_hosts", all, nil, func(o *Options) { o.HostKey, o.KnownHosts = "", "/k" }, "", ""},
		{"insecure", all, nil, func(o *Options) { o.HostKey, o.InsecureIgnoreHostKey = "", true }, "", ""},
		{"host key and known_hosts", all, nil, func(o *Options) { o.KnownHosts = "/k" }, "ssh_known_hosts", "cannot be used with ssh_host_key"},
		{"host key and insecure", all, nil, func(o *Options) { o.InsecureIgnoreHostKey = true }, "ssh_insecure_ignore_host_key", "contradicts ssh_host_key"},
		{"known_hosts and insecure", all, nil, func(o *Options) { o.HostKey, o.KnownHosts, o.InsecureIgnoreHostKey = "", "/k", true },
			"ssh_insecure_ignore_host_key", "contradicts ssh_known_hosts"},
		{"unparsable host key", all, nil, func(o *Options) { o.HostKey = "nonsense" }, "ssh_host_key", `"nonsense" is neither a public key`},
		{"host key from another build", all, []string{"ssh_host_key"}, func(o *Options) { o.HostKey = "${base.host_key}" }, "", ""},
		{"no credentials", all, nil, func(o *Options) { o.PrivateKeyFile = "" }, "ssh_private_key_file",
			"no way to log in: set ssh_private_key_file, ssh_agent_auth = True or ssh_password"},
		{"password only", all, nil, func(o *Options) { o.PrivateKeyFile, o.Password = "", "pw" }, "", ""},
		{"agent only", all, nil, func(o *Options) { o.PrivateKeyFile, o.AgentAuth = "", true }, "", ""},
		{"passphrase without key", all, nil, func(o *Options) { o.PrivateKeyFile, o.Password, o.PrivateKeyPassphrase = "", "pw", "x" },
			"ssh_private_key_passphrase", "is set but ssh_private_key_file is not"},
		{"certificate without key", all, nil, func(o *Options) { o.PrivateKeyFile, o.Password, o.CertificateFile = "", "pw", "/c" },
			"ssh_certificate_file", "needs the key it certifies"},
		{"bastion option without bastion", all, nil, func(o *Options) { o.BastionUsername = "admin" }, "ssh_bastion_username", "is set but ssh_bastion_host is not"},
		{"bastion without its host key", all, nil, func(o *Options) { o.BastionHost = "b" }, "ssh_bastion_host_key", "is needed to verify the bastion"},
		{"bastion verified by known_hosts", all, nil, func(o *Options) { o.HostKey, o.KnownHosts, o.BastionHost = "", "/k", "b" }, "", ""},
		{"bastion with pinned key", all, nil, func(o *Options) { o.BastionHost, o.BastionHostKey = "b", edFP }, "", ""},
		{"bastion bad port", all, nil, func(o *Options) { o.BastionHost, o.BastionHostKey, o.BastionPort = "b", edFP, 0 }, "ssh_bastion_port", "0 is not a TCP port"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := Defaults()
			o.Host, o.HostKey, o.PrivateKeyFile = "203.0.113.10", edKey, "/id"
			tc.set(&o)
			d := schema.Deferred{}
			for _, k := range tc.deferred {
				d[k] = true
			}
			err := o.Validate(d, tc.req)
			if tc.kw == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			var fe *schema.FieldError
			if !errors.As(err, &fe) || fe.Keyword != tc.kw || !strings.Contains(fe.Msg, tc.msg) {
				t.Fatalf("Validate = %v; want an error on %s containing %q", err, tc.kw, tc.msg)
			}
		})
	}
}

func TestOptionsDecodeFromSettings(t *testing.T) {
	s := schema.Of("x", "", &Options{})
	m := value.NewMap()
	m.Set("ssh_host", value.String{S: "10.0.0.5"})
	m.Set("ssh_timeout", value.String{S: "90s"})
	var o Options
	if _, err := s.Decode(m, &o, schema.Options{}); err != nil {
		t.Fatal(err)
	}
	if o.Host != "10.0.0.5" || o.Timeout != 90*time.Second || o.Port != 22 || o.Username != "root" {
		t.Fatalf("decoded %+v", o)
	}
	if o.String() != "root@10.0.0.5:22" {
		t.Errorf("String() = %q", o.String())
	}
}

func TestResolvePathsMakesRelativeFilesWorkspaceRelative(t *testing.T) {
	o := Options{PrivateKeyFile: "keys/id", KnownHosts: "/etc/ssh/known", CertificateFile: "c", BastionPrivateKeyFile: ""}
	o.ResolvePaths("/ws")
	if o.PrivateKeyFile != filepath.Join("/ws", "keys/id") || o.KnownHosts != "/etc/ssh/known" || o.CertificateFile != "/ws/c" || o.BastionPrivateKeyFile != "" {
		t.Fatalf("resolved %+v", o)
	}
}
