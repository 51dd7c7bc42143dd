package qemutest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/imgbuild/imgbuild/engine/output"
	"github.com/imgbuild/imgbuild/engine/testkit"
)

// Installer ISOs of the tiny guest, for the qemu() install flow: they
// boot to a prompt that waits for a command line to be typed, with the
// guest's kernel at /vmlinuz and its initramfs at /initrd.gz.
//
//   - BIOS: ISOLINUX (Debian's isolinux and syslinux-common) with no
//     labels: "boot:" waits for "/vmlinuz initrd=/initrd.gz ARGS".
//   - EFI: GRUB (grub-mkrescue from grub-common, with grub-efi-amd64-bin
//     and mtools) with no menu entries: "grub>" waits for
//     "linux /vmlinuz ARGS", "initrd /initrd.gz", "boot".
//
// Either way the kernel gets exactly what was typed (after the
// BOOT_IMAGE= the loader adds), and the guest echoes its command line on
// the serial console.
const (
	// BIOSBootCommand boots the BIOS ISO with args.
	BIOSBootCommand = "/vmlinuz initrd=/initrd.gz "
	// EFIKernel and EFIInitrd are what GRUB's commands name on the EFI ISO.
	EFIKernel = "/vmlinuz"
	EFIInitrd = "/initrd.gz"
)

var isoOnce struct {
	sync.Mutex
	made map[bool]string
}

// ISO returns the tiny guest's installer ISO (efi: the GRUB one for UEFI,
// else the ISOLINUX one), building it on first use and keeping it in the
// cache directory.
func ISO(t testing.TB, efi bool) string {
	t.Helper()
	g := TinyGuest(t)
	testkit.RequireProgram(t, "xorriso", "xorriso")
	if efi {
		testkit.RequireProgram(t, "grub-mkrescue", "grub-common")
		requireFile(t, "/usr/lib/grub/x86_64-efi/modinfo.sh", "grub-efi-amd64-bin")
		testkit.RequireProgram(t, "mformat", "mtools")
	} else {
		requireFile(t, "/usr/lib/ISOLINUX/isolinux.bin", "isolinux")
		requireFile(t, "/usr/lib/syslinux/modules/bios/ldlinux.c32", "syslinux-common")
	}
	isoOnce.Lock()
	defer isoOnce.Unlock()
	if p, ok := isoOnce.made[efi]; ok {
		return p
	}
	p, err := buildISO(g, efi)
	if err != nil {
		t.Fatalf("building the tiny guest's ISO: %v", err)
	}
	if isoOnce.made == nil {
		isoOnce.made = map[bool]string{}
	}
	isoOnce.made[efi] = p
	return p
}

// No SERIAL: echoing each typed key to the serial port slows ISOLINUX
// down until QEMU's keyboard queue overflows.
const isolinuxCfg = `PROMPT 1
TIMEOUT 0
SAY tiny: boot prompt
`

const grubCfg = `serial --unit=0 --speed=115200
terminal_input console serial
terminal_output console serial
echo "tiny: grub prompt"
`

func buildISO(g *Guest, efi bool) (string, error) {
	kind := "bios"
	if efi {
		kind = "efi"
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00%s\x00%s", kind, g.Kernel, g.Initrd, isolinuxCfg, grubCfg)
	out := filepath.Join(CacheDir(), "tiny-iso-"+kind+"-"+hex.EncodeToString(h.Sum(nil)[:6])+".iso")
	if _, err := os.Stat(out); err == nil {
		return out, nil
	}
	tree, err := os.MkdirTemp(CacheDir(), ".iso-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tree)
	files := map[string]string{"vmlinuz": g.Kernel, "initrd.gz": g.Initrd}
	if efi {
		os.MkdirAll(filepath.Join(tree, "boot/grub"), 0o755)
		if err := os.WriteFile(filepath.Join(tree, "boot/grub/grub.cfg"), []byte(grubCfg), 0o644); err != nil {
			return "", err
		}
	} else {
		os.MkdirAll(filepath.Join(tree, "isolinux"), 0o755)
		files["isolinux/isolinux.bin"] = "/usr/lib/ISOLINUX/isolinux.bin"
		files["isolinux/ldlinux.c32"] = "/usr/lib/syslinux/modules/bios/ldlinux.c32"
		if err := os.WriteFile(filepath.Join(tree, "isolinux/isolinux.cfg"), []byte(isolinuxCfg), 0o644); err != nil {
			return "", err
		}
	}
	for name, src := range files {
		if err := output.CopyFile(src, filepath.Join(tree, name)); err != nil {
			return "", err
		}
	}
	tmp := out + ".partial"
	var cmd *exec.Cmd
	if efi {
		cmd = exec.Command("grub-mkrescue", "-d", "/usr/lib/grub/x86_64-efi", "-o", tmp, tree, "--", "-volid", "TINY")
	} else {
		cmd = exec.Command("xorriso", "-as", "mkisofs", "-o", tmp, "-R", "-J", "-V", "TINY",
			"-b", "isolinux/isolinux.bin", "-c", "isolinux/boot.cat", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table", tree)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("%s: %v: %s", cmd.Args[0], err, lastLine(string(b)))
	}
	return out, os.Rename(tmp, out)
}

// requireFile skips the test (fails it under IMGBUILD_INTEGRATION=1) when
// p, from Debian's package pkg, is missing.
func requireFile(t testing.TB, p, pkg string) {
	t.Helper()
	_, err := os.Stat(p)
	testkit.Require(t, err == nil, p+" is missing: apt-get install "+pkg)
}
