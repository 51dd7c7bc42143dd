package rootfs

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgbuild/imgbuild/engine/output"
)

// The package cache keeps the packages debootstrap and apt download across
// builds: debootstrap reads and fills its debootstrap/ directory itself;
// apt's downloads are lent to the tree before the provisioners run and
// taken back after (apt/). The image never ships them.

// archives is apt's download directory in the tree.
const archives = "var/cache/apt/archives"

// lendPackages puts the cached packages in the tree's apt archive (as hard
// links when the cache and the tree share a file system), so that apt in
// the provisioners downloads only what the cache lacks. The archive is the
// tree's own: a provisioner's apt-get clean empties it, not the cache.
func lendPackages(cache, tree string) (int, error) {
	cached, _ := filepath.Glob(filepath.Join(cache, "apt", "*.deb"))
	dir := filepath.Join(tree, archives)
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

// keepPackages moves what apt downloaded into the package cache (when
// there is one) and out of the tree: the image does not ship them.
func keepPackages(cache, tree string) (int, error) {
	debs, _ := filepath.Glob(filepath.Join(tree, archives, "*.deb"))
	n := 0
	for _, p := range debs {
		fi, err := os.Lstat(p)
		if err != nil || !fi.Mode().IsRegular() {
			continue
		}
		if cache != "" {
			dst := filepath.Join(cache, "apt", filepath.Base(p))
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
