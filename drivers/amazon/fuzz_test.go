package amazon

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/imgbuild/imgbuild/engine/schema"
	"github.com/imgbuild/imgbuild/engine/value"
)

// FuzzAMIName checks the AMI name rules: an accepted name keeps AWS's rules,
// a refused one is explained, and CleanAMIName always makes a name that
// keeps the character rules.
func FuzzAMIName(f *testing.F) {
	for _, s := range []string{"web-1", "web:1.0 #nightly", "w", strings.Repeat("a", 129), "a(b)[c] d.e/f-g'h@i_j", "héllo wörld", "\x00\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := CheckAMIName(name)
		n := utf8.RuneCountInString(name)
		allowed := true
		for _, r := range name {
			allowed = allowed && amiNameChar(r)
		}
		valid := allowed && n >= amiNameMin && n <= amiNameMax && utf8.ValidString(name)
		if (err == nil) != valid {
			t.Fatalf("CheckAMIName(%q) = %v, but the name is valid: %v", name, err, valid)
		}
		if err != nil && !strings.Contains(err.Error(), "breaks AWS's rules for AMI names") {
			t.Fatalf("CheckAMIName(%q) = %v: not explained", name, err)
		}
		clean := CleanAMIName(name)
		if utf8.RuneCountInString(clean) > amiNameMax {
			t.Fatalf("CleanAMIName(%q) = %q is too long", name, clean)
		}
		for _, r := range clean {
			if !amiNameChar(r) {
				t.Fatalf("CleanAMIName(%q) = %q holds %q", name, clean, r)
			}
		}
		if CleanAMIName(clean) != clean {
			t.Fatalf("CleanAMIName is not idempotent on %q", clean)
		}
	})
}

// FuzzAMIID checks that exactly the well-formed AMI ids are accepted.
func FuzzAMIID(f *testing.F) {
	for _, s := range []string{"ami-0abcdef1234567890", "ami-12345678", "ami-12345", "AMI-12345678", "ami-0ABCDEF1234567890", "debian-12", "", "ami-"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		err := CheckAMIID(id)
		hex := strings.TrimPrefix(id, "ami-")
		ok := strings.HasPrefix(id, "ami-") && (len(hex) == 8 || len(hex) == 17) && strings.Trim(hex, "0123456789abcdef") == ""
		if (err == nil) != ok {
			t.Fatalf("CheckAMIID(%q) = %v; well-formed: %v", id, err, ok)
		}
	})
}

// FuzzBlockDeviceMappings decodes launch_block_device_mappings through the
// builder's schema from arbitrary values: it must never panic; what it
// accepts must convert to EC2's mappings consistently, and what it refuses
// must be explained on the keyword.
func FuzzBlockDeviceMappings(f *testing.F) {
	f.Add("/dev/xvda", "gp3", int64(20), int64(3000), int64(125), true, false, "", "", false)
	f.Add("/dev/xvda", "gp9", int64(20), int64(0), int64(0), false, false, "", "", false)
	f.Add("/dev/sdb", "", int64(0), int64(0), int64(0), false, false, "ephemeral0", "", false)
	f.Add("/dev/sdc", "io2", int64(100), int64(0), int64(0), false, true, "", "snap-0abc1234def567890", true)
	f.Add("", "standard", int64(-1), int64(-5), int64(99999), true, true, "ephemeral99", "snap-x", false)
	s := schema.Of(BuilderName, "", &Config{})
	f.Fuzz(func(t *testing.T, device, volumeType string, size, iops, throughput int64, encrypted, noDevice bool, virtual, snapshot string, del bool) {
		bd := value.NewMap()
		bd.Set("device_name", value.String{S: device})
		if volumeType != "" {
			bd.Set("volume_type", value.String{S: volumeType})
		}
		bd.Set("volume_size", value.Int(size))
		bd.Set("iops", value.Int(iops))
		bd.Set("throughput", value.Int(throughput))
		bd.Set("encrypted", value.Bool(encrypted))
		bd.Set("delete_on_termination", value.Bool(del))
		bd.Set("no_device", value.Bool(noDevice))
		if virtual != "" {
			bd.Set("virtual_name", value.String{S: virtual})
		}
		if snapshot != "" {
			bd.Set("snapshot_id", value.String{S: snapshot})
		}
		settings := value.NewMap()
		settings.Set("region", value.String{S: "eu-west-1"})
		settings.Set("source_ami", value.String{S: "ami-0abcdef1234567890"})
		settings.Set("instance_type", value.String{S: "t3.small"})
		settings.Set("ami_name", value.String{S: "fuzz-1"})
		settings.Set("launch_block_device_mappings", value.List{bd})
		cfg := &Config{}
		if _, err := s.Decode(settings, cfg, schema.Options{}); err != nil {
			if !strings.HasPrefix(err.Error(), "for parameter launch_block_device_mappings: ") {
				t.Fatalf("refused without naming the keyword: %v", err)
			}
			return
		}
		got := cfg.LaunchBlockDeviceMappings[0]
		m := got.ec2Mapping()
		if *m.DeviceName != device || device == "" {
			t.Fatalf("device %q became %q", device, *m.DeviceName)
		}
		switch {
		case noDevice:
			if m.NoDevice == nil || m.Ebs != nil {
				t.Fatalf("no_device mapping %+v", m)
			}
		case virtual != "":
			if aws := m.VirtualName; aws == nil || *aws != virtual || m.Ebs != nil {
				t.Fatalf("instance store mapping %+v", m)
			}
		default:
			if m.Ebs == nil || string(m.Ebs.VolumeType) != volumeType || (size > 0) != (m.Ebs.VolumeSize != nil) {
				t.Fatalf("EBS mapping %+v from %+v", m.Ebs, got)
			}
			if m.Ebs.VolumeSize != nil && int64(*m.Ebs.VolumeSize) != size {
				t.Fatalf("size %d became %d", size, *m.Ebs.VolumeSize)
			}
			if *m.Ebs.DeleteOnTermination != del || *m.Ebs.Encrypted != encrypted {
				t.Fatalf("flags lost: %+v", m.Ebs)
			}
		}
		_ = templateMapping(got.ec2Mapping())
	})
}

// FuzzConsoleHostKey feeds arbitrary console output to the host key
// parser: it must never panic, and a key it returns must come from inside
// a complete block.
func FuzzConsoleHostKey(f *testing.F) {
	f.Add(consoleSample)
	f.Add("-----BEGIN SSH HOST KEY KEYS-----\nssh-ed25519 AAAA\n")
	f.Add("-----END SSH HOST KEY KEYS-----\n-----BEGIN SSH HOST KEY KEYS-----")
	f.Fuzz(func(t *testing.T, console string) {
		k := ConsoleHostKey(console)
		if k != nil && (!strings.Contains(console, "-----BEGIN SSH HOST KEY KEYS-----") || !strings.Contains(console, "-----END SSH HOST KEY KEYS-----")) {
			t.Fatalf("a key from outside a block: %s", k.Type())
		}
	})
}

// FuzzDeprecateAt checks deprecate_at's parser: a time it returns is in
// UTC and, for a duration, after now.
func FuzzDeprecateAt(f *testing.F) {
	for _, s := range []string{"2027-01-01T00:00:00Z", "8760h", "-1h", "next year", "2027-01-01T00:00:00+02:00", "0s"} {
		f.Add(s)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		at, err := parseDeprecateAt(s, now)
		if err != nil {
			return
		}
		if at.Location() != time.UTC {
			t.Fatalf("%q: %s is not UTC", s, at)
		}
		if _, derr := time.ParseDuration(s); derr == nil && !at.After(now.Add(-time.Minute)) {
			t.Fatalf("%q: %s is not after now", s, at)
		}
	})
}
