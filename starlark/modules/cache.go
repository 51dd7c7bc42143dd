package modules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/imgbuild/imgbuild/engine/filelock"
)

// CacheEnv names the environment variable that moves the module cache
// (a CI cache directory, say).
const CacheEnv = "IMGBUILD_MODULE_CACHE"

// DefaultCacheDir is $IMGBUILD_MODULE_CACHE, else imgbuild/modules in the
// user's cache directory (~/.cache/imgbuild/modules on Linux).
func DefaultCacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return filepath.Abs(d)
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("finding the user cache directory for modules: %w (set %s)", err, CacheEnv)
	}
	return filepath.Join(d, "imgbuild", "modules"), nil
}

// Cache is the module cache, shared by every workspace of a user and safe
// for concurrent imgbuild runs:
//
//	git/<host-path>-<hash of URL>/  a bare repository per URL, fetched into
//	trees/git-<commit>/             a repository's whole tree at a commit
//	trees/url-<sha256>/             an archive's tree, by the archive's sha256
//	locks/                          a lock file per repository and tree
//
// Trees are keyed by what they hold (a commit, an archive's digest), so
// they are shared by every URL that serves them and never change; a tree
// whose content no longer hashes to what the lock says was changed on
// disk, and is made again.
type Cache struct {
	// Dir is the cache's directory.
	Dir string
	// Git is the git binary; "" means "git" on $PATH.
	Git string
	// HTTP fetches url archives; nil means a client with the
	// environment's proxy settings.
	HTTP *http.Client
}

func (c *Cache) lock(ctx context.Context, name string) (func(), error) {
	return filelock.Lock(ctx, filepath.Join(c.Dir, "locks", name+".lock"))
}

func (c *Cache) gitTree(commit string) string {
	return filepath.Join(c.Dir, "trees", "git-"+commit)
}

func (c *Cache) urlTree(sha string) string {
	return filepath.Join(c.Dir, "trees", "url-"+sha)
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// bareRepo is the bare repository URL is fetched into: named after the
// URL, readable in a listing, unique by its hash.
func (c *Cache) bareRepo(url string) string {
	name := url
	if i := strings.Index(name, "://"); i >= 0 {
		name = name[i+3:]
	}
	name = strings.Trim(unsafeChars.ReplaceAllString(name, "-"), "-.")
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	sum := sha256.Sum256([]byte(url))
	return filepath.Join(c.Dir, "git", name+"-"+hex.EncodeToString(sum[:6]))
}

// makeTree makes the cache tree dir, unless it is there already: fill
// writes the tree in tmp, a new scratch directory beside dir that is
// removed afterwards, and returns where; that tree then becomes dir
// (install).
func makeTree(dir, prefix string, fill func(tmp string) (tree string, err error)) (string, error) {
	if exists(dir) {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), prefix)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	tree, err := fill(tmp)
	if err != nil {
		return "", err
	}
	return dir, install(tree, dir)
}

// install renames the finished directory tmp to dir; when another run
// installed dir first, tmp is removed and theirs is kept.
func install(tmp, dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			os.RemoveAll(tmp)
			return nil
		}
		return err
	}
	return nil
}

// discard moves a tree out of the way and removes it, so that no reader
// sees it half removed.
func discard(dir string) error {
	gone := dir + ".discarded"
	os.RemoveAll(gone)
	if err := os.Rename(dir, gone); err != nil && !os.IsNotExist(err) {
		return err
	}
	return os.RemoveAll(gone)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
