package rootfs

import (
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// findKernel returns the tree's kernel and initrd (paths inside the tree),
// the newest when there are several; "" when there is none. Debian's
// /vmlinuz and /initrd.img links (or those in /boot) win; else the highest
// version of /boot/vmlinuz-*.
func findKernel(tree string) (kernel, initrd string) {
	for _, l := range [][2]string{{"vmlinuz", "initrd.img"}, {"boot/vmlinuz", "boot/initrd.img"}} {
		p := filepath.Join(tree, l[0])
		if target, err := os.Readlink(p); err == nil {
			k := filepath.Join(filepath.Dir(l[0]), target)
			if !filepath.IsAbs(target) {
				k = filepath.Clean(k)
			} else {
				k = strings.TrimPrefix(target, "/")
			}
			if _, err := os.Stat(filepath.Join(tree, k)); err == nil {
				kernel = k
				break
			}
		}
	}
	if kernel == "" {
		ks, _ := filepath.Glob(filepath.Join(tree, "boot/vmlinuz-*"))
		if len(ks) == 0 {
			return "", ""
		}
		sort.Slice(ks, func(i, j int) bool { return versionLess(ks[i], ks[j]) })
		kernel, _ = filepath.Rel(tree, ks[len(ks)-1])
	}
	version := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	if i := filepath.Join(tree, "boot/initrd.img-"+version); fileExists(i) {
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
