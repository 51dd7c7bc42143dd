package iso

import (
	"fmt"
	"strings"
	"testing"
)

func TestEveryPackerChecksumFormParses(t *testing.T) {
	h := func(n int) string { return strings.Repeat("ab", n/2) }
	for _, tc := range []struct{ in, want string }{
		{"sha256:" + h(64), "sha256:" + h(64)},
		{"SHA512:" + strings.ToUpper(h(128)), "sha512:" + h(128)},
		{"sha1:" + h(40), "sha1:" + h(40)},
		{"md5:" + h(32), "md5:" + h(32)},
		{h(64), "sha256:" + h(64)},
		{h(32), "md5:" + h(32)},
		{"file:SHA256SUMS", "file:SHA256SUMS"},
		{"file:https://cdimage.debian.org/debian-cd/current/amd64/iso-cd/SHA256SUMS", "file:https://cdimage.debian.org/debian-cd/current/amd64/iso-cd/SHA256SUMS"},
		{"none", "none"},
		{"None", "none"},
	} {
		c, err := ParseChecksum(tc.in)
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if c.String() != tc.want {
			t.Errorf("%q parses as %s, want %s", tc.in, c, tc.want)
		}
	}
}

func TestABadChecksumSaysHowToWriteIt(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", `is empty: write "sha256:<hex>" (or sha512:, sha1:, md5:), "file:SHA256SUMS" (a path or URL), or "none" to skip the check`},
		{"sha256:abc", `"sha256:abc": a sha256 checksum is 64 hexadecimal digits, not 3`},
		{"sha256:xyz", `"sha256:xyz" is not a checksum: write "sha256:<hex>" (or sha512:, sha1:, md5:), "file:SHA256SUMS", or "none"`},
		{"sha256:abcd", `"sha256:abcd": a sha256 checksum is 64 hexadecimal digits, not 4`},
		{"crc32:abcd1234", `"crc32:abcd1234": the algorithm must be sha256, sha512, sha1 or md5, not "crc32" (or file: for a list of sums)`},
		{"abcd", `"abcd" has 4 hexadecimal digits, which is no algorithm's length (md5 32, sha1 40, sha256 64, sha512 128): write the algorithm, as "sha256:<hex>"`},
		{"file:", `"file:" names no file: write "file:SHA256SUMS" or "file:https://.../SHA256SUMS"`},
	} {
		_, err := ParseChecksum(tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%q:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}

const sums = `-----BEGIN PGP SIGNED MESSAGE-----
Hash: SHA256

# Debian's CD images
` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef  debian-12.5.0-amd64-netinst.iso\r\n" +
	"1111111111111111111111111111111111111111111111111111111111111111 *./binary.iso\n" +
	"SHA512 (bsd.iso) = " + "22222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222" + "\n" +
	"33333333333333333333333333333333  amd64/iso-cd/nested.iso\n" +
	`-----BEGIN PGP SIGNATURE-----
iQIzBAEBCAAdFiEE
-----END PGP SIGNATURE-----
`

func TestAChecksumListIsReadInEveryCommonLayout(t *testing.T) {
	entries, err := ParseList(strings.NewReader(sums))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Algo+" "+e.Name+" "+e.Sum[:4])
	}
	want := "sha256 debian-12.5.0-amd64-netinst.iso 0123|sha256 binary.iso 1111|sha512 bsd.iso 2222|md5 amd64/iso-cd/nested.iso 3333"
	if strings.Join(got, "|") != want {
		t.Errorf("entries:\n %s\nwant\n %s", strings.Join(got, "|"), want)
	}
	for _, name := range []string{"debian-12.5.0-amd64-netinst.iso", "binary.iso", "bsd.iso", "nested.iso"} {
		if _, ok := Find(entries, name); !ok {
			t.Errorf("%s not found", name)
		}
	}
	if _, ok := Find(entries, "other.iso"); ok {
		t.Error("other.iso found")
	}
}

// FuzzChecksumList checks that a list never makes the parser panic, that
// every entry it returns is usable, and that an entry written back as
// sha256sum writes it reads the same.
func FuzzChecksumList(f *testing.F) {
	f.Add(sums)
	f.Add("abc  x\n")
	f.Add("SHA256 (a b) = " + strings.Repeat("0", 64))
	f.Fuzz(func(t *testing.T, s string) {
		entries, err := ParseList(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, e := range entries {
			if Algorithms[e.Algo] != len(e.Sum) || e.Name == "" || strings.ContainsAny(e.Name, "\n") {
				t.Fatalf("%q: entry %+v", s, e)
			}
			if strings.TrimSpace(e.Name) != e.Name || strings.HasPrefix(e.Name, "*") || strings.HasPrefix(e.Name, "./") {
				continue // written back, such a name reads differently
			}
			back, err := ParseList(strings.NewReader(fmt.Sprintf("%s  %s\n", e.Sum, e.Name)))
			if err != nil || len(back) != 1 || back[0] != e {
				t.Fatalf("%q: %+v reads back as %+v (%v)", s, e, back, err)
			}
		}
	})
}

// FuzzChecksum checks that iso_checksum never makes the parser panic and
// that what it accepts prints back as itself.
func FuzzChecksum(f *testing.F) {
	for _, s := range []string{"none", "file:SUMS", "sha256:" + strings.Repeat("a", 64), strings.Repeat("0", 32), "md5:x", ":"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseChecksum(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q: empty error", s)
			}
			return
		}
		again, err := ParseChecksum(c.String())
		if err != nil || *again != *c {
			t.Fatalf("%q parses as %s, which parses as %v (%v)", s, c, again, err)
		}
	})
}
