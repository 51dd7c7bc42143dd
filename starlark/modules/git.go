package modules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// GitError is a git command that failed, with what git said.
type GitError struct {
	Args   []string
	Stderr string
	Err    error
}

func (e *GitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("git %s: %s", strings.Join(e.Args, " "), msg)
}

func (e *GitError) Unwrap() error { return e.Err }

// Said is what git printed on its standard error, trimmed.
func (e *GitError) Said() string { return strings.TrimSpace(e.Stderr) }

func (c *Cache) gitBin() string {
	if c.Git != "" {
		return c.Git
	}
	return "git"
}

// remoteGit runs git against a remote, in the user's environment, so that
// their SSH keys, agent, credential helpers, GIT_SSH_COMMAND and
// url.<base>.insteadOf rules apply. A prompt for a password fails at once
// instead of hanging (GIT_TERMINAL_PROMPT=0, unless the user set it).
func (c *Cache) remoteGit(ctx context.Context, dir string, args ...string) (string, error) {
	env := os.Environ()
	if _, set := os.LookupEnv("GIT_TERMINAL_PROMPT"); !set {
		env = append(env, "GIT_TERMINAL_PROMPT=0")
	}
	return c.runGit(ctx, dir, env, args...)
}

// localGit runs git on the cache's own repositories with no user or
// system configuration, so that how a commit becomes files does not
// depend on the machine (no autocrlf, no filters).
func (c *Cache) localGit(ctx context.Context, extraEnv []string, args ...string) (string, error) {
	env := append(os.Environ(), "GIT_CONFIG_GLOBAL="+os.DevNull, "GIT_CONFIG_NOSYSTEM=1")
	return c.runGit(ctx, "", append(env, extraEnv...), args...)
}

func (c *Cache) runGit(ctx context.Context, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.gitBin(), args...)
	cmd.Dir = dir
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return "", fmt.Errorf("git is not installed: it fetches git dependencies (apt-get install git)")
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", &GitError{Args: args, Stderr: stderr.String(), Err: err}
	}
	return stdout.String(), nil
}

// UnreachableError is a repository git could not list.
type UnreachableError struct {
	URL string
	Git *GitError
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the git repository %s; git said:\n%s", e.URL, indent(e.Git.Said()))
}

func (e *UnreachableError) Unwrap() error { return e.Git }

// RefNotFoundError is a ref the repository does not have.
type RefNotFoundError struct {
	URL, Ref       string
	Tags, Branches []string
}

func (e *RefNotFoundError) Error() string {
	msg := fmt.Sprintf("%s has no tag, branch or commit %q", e.URL, e.Ref)
	if len(e.Tags) > 0 {
		msg += "; tags: " + listSome(e.Tags)
	}
	if len(e.Branches) > 0 {
		msg += "; branches: " + listSome(e.Branches)
	}
	return msg
}

func listSome(names []string) string {
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

var abbrevHex = regexp.MustCompile(`^[0-9a-f]{4,39}$`)

// resolveRef asks the repository what commit ref names: a tag (annotated
// tags peeled to their commit) before a branch of the same name, or a
// full commit id as it is. It returns the commit, and the ref to fetch it
// by ("" to fetch the commit itself; "*" when ref is an abbreviated
// commit that only a full fetch can expand).
func (c *Cache) resolveRef(ctx context.Context, url, ref string) (commit, fetchRef string, err error) {
	if commitHex.MatchString(ref) {
		return ref, "", nil
	}
	out, err := c.remoteGit(ctx, "", "ls-remote", "--", url)
	if err != nil {
		var ge *GitError
		if errors.As(err, &ge) {
			return "", "", &UnreachableError{URL: url, Git: ge}
		}
		return "", "", err
	}
	refs := map[string]string{}
	var tags, branches []string
	for _, line := range strings.Split(out, "\n") {
		sha, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if !ok {
			continue
		}
		refs[name] = sha
		switch {
		case strings.HasPrefix(name, "refs/tags/") && !strings.HasSuffix(name, "^{}"):
			tags = append(tags, strings.TrimPrefix(name, "refs/tags/"))
		case strings.HasPrefix(name, "refs/heads/"):
			branches = append(branches, strings.TrimPrefix(name, "refs/heads/"))
		}
	}
	for _, try := range []struct{ name, fetch string }{
		{"refs/tags/" + ref + "^{}", "refs/tags/" + ref},
		{"refs/tags/" + ref, "refs/tags/" + ref},
		{"refs/heads/" + ref, "refs/heads/" + ref},
		{ref, ref}, // HEAD, refs/…
	} {
		if sha, ok := refs[try.name]; ok {
			return sha, try.fetch, nil
		}
	}
	if abbrevHex.MatchString(ref) {
		return "", "*", nil
	}
	sort.Strings(tags)
	sort.Strings(branches)
	return "", "", &RefNotFoundError{URL: url, Ref: ref, Tags: tags, Branches: branches}
}

// fetchGit makes sure the cache holds commit of url (fetched by
// fetchRef, or by the commit itself when that is ""), and returns the
// tree's directory. With fetchRef "*", commit is an abbreviation,
// expanded after fetching every branch and tag; the full commit is
// returned.
func (c *Cache) fetchGit(ctx context.Context, url, commit, fetchRef string) (dir, full string, err error) {
	if fetchRef != "*" && exists(c.gitTree(commit)) {
		return c.gitTree(commit), commit, nil
	}
	bare := c.bareRepo(url)
	unlock, err := c.lock(ctx, "git-"+filepath.Base(bare))
	if err != nil {
		return "", "", err
	}
	defer unlock()
	if !exists(filepath.Join(bare, "HEAD")) {
		if err := os.MkdirAll(filepath.Dir(bare), 0o755); err != nil {
			return "", "", err
		}
		if _, err := c.localGit(ctx, nil, "init", "--quiet", "--bare", bare); err != nil {
			return "", "", err
		}
	}
	if fetchRef == "*" {
		if err := c.fetchAll(ctx, bare, url); err != nil {
			return "", "", err
		}
		out, err := c.localGit(ctx, nil, "--git-dir", bare, "rev-parse", "--verify", "--quiet", commit+"^{commit}")
		if err != nil {
			return "", "", &RefNotFoundError{URL: url, Ref: commit}
		}
		commit = strings.TrimSpace(out)
	} else if !c.hasCommit(ctx, bare, commit) {
		want := fetchRef
		if want == "" {
			want = commit
		}
		// One commit, without its history; a server that cannot serve a
		// commit by id (or a shallow fetch) gets a full fetch instead.
		_, err := c.remoteGit(ctx, "", "--git-dir", bare, "fetch", "--quiet", "--no-tags", "--depth=1", "--", url, want)
		if err != nil || !c.hasCommit(ctx, bare, commit) {
			if ferr := c.fetchAll(ctx, bare, url); ferr != nil {
				return "", "", ferr
			}
		}
		if !c.hasCommit(ctx, bare, commit) {
			return "", "", fmt.Errorf("%s has no commit %s (was it force-pushed away?)", url, commit)
		}
	}
	dir, err = c.checkout(ctx, bare, commit)
	return dir, commit, err
}

func (c *Cache) fetchAll(ctx context.Context, bare, url string) error {
	_, err := c.remoteGit(ctx, "", "--git-dir", bare, "fetch", "--quiet", "--no-tags", "--", url,
		"+refs/heads/*:refs/imgbuild/heads/*", "+refs/tags/*:refs/imgbuild/tags/*")
	var ge *GitError
	if errors.As(err, &ge) {
		return &UnreachableError{URL: url, Git: ge}
	}
	return err
}

func (c *Cache) hasCommit(ctx context.Context, bare, commit string) bool {
	_, err := c.localGit(ctx, nil, "--git-dir", bare, "cat-file", "-e", commit+"^{commit}")
	return err == nil
}

// checkout writes the tree of commit into trees/git-<commit>, through an
// index of its own, so that concurrent checkouts of one repository never
// share git's index or HEAD.
func (c *Cache) checkout(ctx context.Context, bare, commit string) (string, error) {
	return makeTree(c.gitTree(commit), ".tmp-git-", func(tmp string) (string, error) {
		work := filepath.Join(tmp, "tree")
		env := []string{"GIT_DIR=" + bare, "GIT_INDEX_FILE=" + filepath.Join(tmp, "index"), "GIT_WORK_TREE=" + work}
		if err := os.Mkdir(work, 0o755); err != nil {
			return "", err
		}
		if _, err := c.localGit(ctx, env, "read-tree", commit); err != nil {
			return "", err
		}
		if _, err := c.localGit(ctx, env, "checkout-index", "--all", "--force"); err != nil {
			return "", err
		}
		return work, nil
	})
}

// refetchGit makes the tree of commit again: from the local repository
// first, then, if that too is wrong (check says so), from url into a new
// one.
func (c *Cache) refetchGit(ctx context.Context, url, commit string, good func(dir string) bool) (string, error) {
	if err := discard(c.gitTree(commit)); err != nil {
		return "", err
	}
	bare := c.bareRepo(url)
	if c.hasCommit(ctx, bare, commit) {
		dir, err := c.checkout(ctx, bare, commit)
		if err == nil && good(dir) {
			return dir, nil
		}
		if err := discard(c.gitTree(commit)); err != nil {
			return "", err
		}
	}
	unlock, err := c.lock(ctx, "git-"+filepath.Base(bare))
	if err != nil {
		return "", err
	}
	err = discard(bare)
	unlock()
	if err != nil {
		return "", err
	}
	dir, _, err := c.fetchGit(ctx, url, commit, "")
	return dir, err
}
