package modules

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// HashPrefix starts every content hash.
const HashPrefix = "sha256:"

// HashTree returns the content hash of the module in dir: "sha256:" and
// the hex SHA-256 of a manifest with one line per file and symbolic link
// under dir, sorted by path (byte order):
//
//	<type> <hex SHA-256 of the content> <path>\n
//
// path is relative to dir and slash-separated; type is "f" for a regular
// file, "x" for a regular file its owner may execute, "l" for a symbolic
// link (whose content is its target, as written). Directories count only
// through what they hold (an empty one does not count), and a directory
// named .git is skipped. Anything else (a device, a socket, a pipe) or a
// path holding a newline is refused. So the hash changes when a byte, a
// name, an executable bit or a link changes, and does not when
// modification times, owners or other permission bits do: what git and a
// tar archive carry, and what a module's behaviour can depend on.
func HashTree(dir string) (string, error) {
	type entry struct{ line, path string }
	var lines []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		if d.IsDir() {
			if d.Name() == ".git" {
				return filepath.SkipDir
			}
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if strings.ContainsAny(rel, "\n\r") {
			return fmt.Errorf("%q: a file name with a line break cannot be part of a module", rel)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		var kind, sum string
		switch {
		case info.Mode().IsRegular():
			kind = "f"
			if info.Mode()&0o100 != 0 {
				kind = "x"
			}
			if sum, err = fileSHA256(p); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			kind, sum = "l", bytesSHA256([]byte(target))
		default:
			return fmt.Errorf("%s is a %s: a module holds only files, directories and symbolic links", rel, info.Mode().Type())
		}
		lines = append(lines, entry{kind + " " + sum + " " + rel + "\n", rel})
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("hashing the module in %s: %w", dir, err)
	}
	sort.Slice(lines, func(i, j int) bool { return lines[i].path < lines[j].path })
	h := sha256.New()
	for _, l := range lines {
		io.WriteString(h, l.line)
	}
	return HashPrefix + hex.EncodeToString(h.Sum(nil)), nil
}

func fileSHA256(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func bytesSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ShortHash is a content hash cut for messages: "sha256:0123456789ab".
func ShortHash(h string) string {
	if len(h) > len(HashPrefix)+12 {
		return h[:len(HashPrefix)+12]
	}
	return h
}
