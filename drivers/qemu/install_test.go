package qemu_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgbuild/imgbuild/drivers/iso"
	"github.com/imgbuild/imgbuild/drivers/qemu/qemutest"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// typedArgs are kernel arguments typed at the ISO's boot prompt: letters
// of both cases, digits, and punctuation with and without shift, which
// must arrive as they are written.
const typedArgs = "tiny.typed=Hello_World-42:x/y,z.=+@%^~!#&()];|<lt><gt>`"

// typedArgsText is typedArgs as the kernel gets it.
const typedArgsText = "tiny.typed=Hello_World-42:x/y,z.=+@%^~!#&()];|<>`"

// isoWorkspace makes a workspace holding the tiny guest's installer ISO
// (tiny.iso), an HTTP directory (www/hello.txt) and a directory for the
// second CD (cd/note.txt).
func isoWorkspace(t *testing.T, efi bool) (dir, sum string) {
	t.Helper()
	src := qemutest.ISO(t, efi)
	dir = t.TempDir()
	if err := os.Link(src, filepath.Join(dir, "tiny.iso")); err != nil {
		data, _ := os.ReadFile(src)
		os.WriteFile(filepath.Join(dir, "tiny.iso"), data, 0o644)
	}
	testkit.WriteFile(t, filepath.Join(dir, "www/hello.txt"), "hello over http")
	testkit.WriteFile(t, filepath.Join(dir, "cd/note.txt"), "a note on the cd")
	sum, err := iso.SumFile(context.Background(), filepath.Join(dir, "tiny.iso"), "sha256", nil)
	if err != nil {
		t.Fatal(err)
	}
	return dir, sum
}

// isoQemu is a qemu() call installing from tiny.iso; settings replace or
// add keywords.
func isoQemu(sum string, settings map[string]string) string {
	kw := map[string]string{
		"disk":              `None`,
		"kernel":            `None`,
		"initrd":            `None`,
		"append":            `None`,
		"iso_url":           `"tiny.iso"`,
		"iso_checksum":      `"sha256:` + sum + `"`,
		"disk_size":         `"64M"`,
		"boot_wait":         `"2s"`,
		"boot_key_interval": `"50ms"`,
		"http_directory":    `"www"`,
		"cd_files":          `["cd/"]`,
		"provisioners":      `[shell(inline = ["cat /proc/cmdline", "cat /run/tiny.log"])]`,
	}
	for k, v := range settings {
		kw[k] = v
	}
	call := tinyQemu(kw)
	// None removes a keyword of tinyQemu's.
	var lines []string
	for _, l := range strings.Split(call, "\n") {
		if !strings.HasSuffix(l, "= None,") {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}

// TestInstallFromAnISO boots the tiny guest's installer ISOs, BIOS
// (ISOLINUX) and UEFI (GRUB on OVMF), types its kernel's command line at
// the boot prompt, and checks what the guest got: the typed arguments
// exactly, a file from http_directory, a file of cd_files, and the SSH key
// it was reached with, from the HTTP server (BIOS) or the CD (UEFI).
func TestInstallFromAnISO(t *testing.T) {
	for _, tc := range []struct {
		name     string
		efi      bool
		key      string // tiny.key's value
		keyLine  string
		settings map[string]string
	}{
		{name: "bios", key: "{http_url}/.imgbuild/authorized_keys", keyLine: "key from http://10.0.2.2:"},
		{name: "efi", efi: true, key: "cd:imgbuild/authorized_keys", keyLine: "key from cd imgbuild/authorized_keys",
			// GRUB under TCG on a busy machine loses keys typed 50ms apart:
			// Packer's default interval.
			settings: map[string]string{"firmware": `"efi"`, "boot_prompt": `"grub>"`, "memory": `512`, "boot_key_interval": `"100ms"`, "disk_interface": `"sata"`, "cd_label": `"cidata"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, sum := isoWorkspace(t, tc.efi)
			rest := " tiny.fetch={http_url}/hello.txt tiny.cdfile=note.txt tiny.key=" + tc.key
			boot := `["` + qemutest.BIOSBootCommand + "console=ttyS0,115200n8 quiet " + typedArgs + rest + `<enter>"]`
			if tc.efi {
				// GRUB's command line is a shell: the punctuation is quoted
				// (GRUB passes the word to the kernel without the quotes).
				boot = `["linux ` + qemutest.EFIKernel + " console=ttyS0,115200n8 quiet '" + typedArgs + "'" + rest + `<enter>", "initrd ` + qemutest.EFIInitrd + `<enter>", "boot<enter>"]`
			}
			settings := map[string]string{"boot_command": boot}
			for k, v := range tc.settings {
				settings[k] = v
			}
			testkit.WriteFile(t, filepath.Join(dir, "images.star"), isoQemu(sum, settings))
			start := time.Now()
			r := runIn(t, context.Background(), dir, nil)
			art := r.ok(t, "tiny")
			t.Logf("installed in %s: %s", time.Since(start).Round(100*time.Millisecond), strings.Join(r.Rec.StepTimes(), ", "))
			log := r.Rec.Log()
			wantCmdline := "BOOT_IMAGE=/vmlinuz "
			if !tc.efi {
				wantCmdline += "initrd=/initrd.gz "
			}
			wantCmdline += "console=ttyS0,115200n8 quiet " + typedArgsText + " tiny.fetch=http://10.0.2.2:"
			testkit.WantIn(t, "the log", log,
				wantCmdline,
				"fetched http://10.0.2.2:",
				"/hello.txt: hello over http",
				"cd note.txt: a note on the cd",
				tc.keyLine,
				"1 authorized key(s) now",
				"the machine powered off in",
			)
			if art.Fields["disk"] != "output/tiny/tiny.qcow2" {
				t.Errorf("fields: %v", art.Fields)
			}
			r.nothingLeft(t)
		})
	}
}
