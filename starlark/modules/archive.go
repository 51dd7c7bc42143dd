package modules

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// MaxArchive bounds the size of a url dependency's archive, and of what it
// unpacks to: a module is text, and a bigger download is a mistake.
const MaxArchive = 1 << 30

// ArchiveMismatchError is a downloaded archive whose digest is not the
// one imgbuild.mod gives.
type ArchiveMismatchError struct {
	URL, Want, Got string
}

func (e *ArchiveMismatchError) Error() string {
	return fmt.Sprintf("the archive at %s has sha256 %s, but sha256 = %q: if the new archive is the one you want, put its sha256 in imgbuild.mod", e.URL, e.Got, e.Want)
}

// fetchURL makes sure the cache holds the tree of the archive at url with
// the given sha256, and returns its directory.
func (c *Cache) fetchURL(ctx context.Context, url, sha string) (string, error) {
	dir := c.urlTree(sha)
	if exists(dir) {
		return dir, nil
	}
	unlock, err := c.lock(ctx, "url-"+sha)
	if err != nil {
		return "", err
	}
	defer unlock()
	return makeTree(dir, ".tmp-url-", func(tmp string) (string, error) {
		archive := filepath.Join(tmp, "archive")
		if err := c.download(ctx, url, sha, archive); err != nil {
			return "", err
		}
		tree := filepath.Join(tmp, "tree")
		if err := unpack(archive, tree); err != nil {
			return "", fmt.Errorf("unpacking %s: %w", url, err)
		}
		return tree, nil
	})
}

// refetchURL downloads the archive again, for a tree that was changed on
// disk.
func (c *Cache) refetchURL(ctx context.Context, url, sha string) (string, error) {
	if err := discard(c.urlTree(sha)); err != nil {
		return "", err
	}
	return c.fetchURL(ctx, url, sha)
}

// download writes url to file and checks its sha256.
func (c *Cache) download(ctx context.Context, url, sha, file string) error {
	client := c.HTTP
	if client == nil {
		client = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("downloading %s: the server answered %s", url, resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, MaxArchive+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("downloading %s: %w", url, err)
	}
	if n > MaxArchive {
		return fmt.Errorf("downloading %s: the archive is bigger than %d MiB; a module should be much smaller", url, MaxArchive>>20)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return &ArchiveMismatchError{URL: url, Want: sha, Got: got}
	}
	return nil
}

// unpack writes the tar (gzip-compressed or not) archive into dir, which
// it creates. Every entry must stay inside dir: no absolute names, no
// "..", no link leading out (os.Root refuses to follow one). When every
// entry is under one top directory (as in a release tarball, repo-1.2/),
// that directory becomes dir.
func unpack(archive, dir string) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := decompress(f)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var total int64
	top, single := "", true // one top directory holds every entry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		name, err := entryName(hdr.Name)
		if err != nil {
			return err
		}
		if name == "" {
			continue // "./"
		}
		first, _, _ := strings.Cut(name, "/")
		if top == "" {
			top = first
		}
		if first != top || (!strings.Contains(name, "/") && hdr.Typeflag != tar.TypeDir) {
			single = false
		}
		if err := root.MkdirAll(path.Dir(name), 0o755); err != nil && path.Dir(name) != "." {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeReg:
			total += hdr.Size
			if total > MaxArchive {
				return fmt.Errorf("it unpacks to more than %d MiB", MaxArchive>>20)
			}
			mode := os.FileMode(0o644)
			if hdr.Mode&0o100 != 0 {
				mode = 0o755
			}
			out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
			if err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
			_, err = io.Copy(out, io.LimitReader(tr, hdr.Size))
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeSymlink:
			if err := checkLink(name, hdr.Linkname); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
			if err := root.Symlink(hdr.Linkname, name); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeLink:
			target, err := entryName(hdr.Linkname)
			if err != nil || target == "" {
				return fmt.Errorf("%s: a hard link to %q", hdr.Name, hdr.Linkname)
			}
			if err := root.Link(target, name); err != nil {
				return fmt.Errorf("%s: %w", hdr.Name, err)
			}
		case tar.TypeXGlobalHeader, tar.TypeXHeader:
		default:
			return fmt.Errorf("%s: a module archive holds only files, directories and links, not a %s", hdr.Name, typeName(hdr.Typeflag))
		}
	}
	if single && top != "" {
		return hoist(dir, top)
	}
	return nil
}

// entryName cleans an archive entry's name; "" is the top itself.
func entryName(name string) (string, error) {
	clean := path.Clean(strings.TrimPrefix(name, "./"))
	switch {
	case strings.HasPrefix(name, "/"), clean == "..", strings.HasPrefix(clean, "../"), strings.Contains(name, "\\"):
		return "", fmt.Errorf("the entry %q leads outside the archive", name)
	case clean == ".":
		return "", nil
	}
	return clean, nil
}

// checkLink refuses a symbolic link that is absolute or leads outside.
func checkLink(name, target string) error {
	if path.IsAbs(target) {
		return fmt.Errorf("a symbolic link to the absolute path %s", target)
	}
	to := path.Join(path.Dir(name), target)
	if to == ".." || strings.HasPrefix(to, "../") {
		return fmt.Errorf("a symbolic link to %s, outside the archive", target)
	}
	return nil
}

// hoist makes dir/top the whole of dir.
func hoist(dir, top string) error {
	tmp := dir + ".hoist"
	if err := os.Rename(filepath.Join(dir, top), tmp); err != nil {
		return err
	}
	if err := os.Remove(dir); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// decompress returns the tar stream of f, gunzipped when it is gzip.
func decompress(f *os.File) (io.Reader, error) {
	br := bufio.NewReader(f)
	magic, _ := br.Peek(2)
	if len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		return gzip.NewReader(br)
	}
	return br, nil
}

func typeName(t byte) string {
	switch t {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "named pipe"
	}
	return fmt.Sprintf("tar entry of type %q", t)
}
