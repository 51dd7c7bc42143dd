package rootfs

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// writeInTree writes a file into the tree (p is a path inside it),
// replacing a symbolic link rather than writing through it.
func writeInTree(tree, p string, data string, mode fs.FileMode) error {
	full := filepath.Join(tree, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	if fi, err := os.Lstat(full); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		if err := os.Remove(full); err != nil {
			return err
		}
	}
	if err := os.WriteFile(full, []byte(data), mode); err != nil {
		return fmt.Errorf("writing %s in the tree: %w", p, err)
	}
	return os.Chmod(full, mode)
}

// inTree reports whether the path p exists inside the tree.
func inTree(tree, p string) bool {
	_, err := os.Lstat(filepath.Join(tree, p))
	return err == nil
}
