package modules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/google/renameio/v2"
	"github.com/imgbuild/imgbuild/starlark/host"
)

// LockFile is the name of the lock, next to imgbuild.mod.
const LockFile = "imgbuild.lock"

// lockVersion is the format written; a lock of another version is refused
// with the advice to upgrade imgbuild.
const lockVersion = 1

// Lock is imgbuild.lock: for every module fetched from git or an archive,
// anywhere in the workspace's dependency graph, the request and what it
// resolved to. Modules on disk (path dependencies of the workspace) are
// not locked: they change with the workspace itself.
type Lock struct {
	Version int      `json:"version"`
	Modules []Locked `json:"modules"`
}

// Locked is one fetched module: the request (Git, Ref, Path; or URL,
// SHA256, Path) and what it resolved to (Commit for git, and the content
// hash of the module's tree, HashTree).
type Locked struct {
	// Name is the module's canonical name: its module(name = ...), else
	// the name it was first asked for by.
	Name   string `json:"name"`
	Git    string `json:"git,omitempty"`
	Ref    string `json:"ref,omitempty"`
	URL    string `json:"url,omitempty"`
	SHA256 string `json:"sha256,omitempty"`
	Path   string `json:"path,omitempty"`
	Commit string `json:"commit,omitempty"`
	Hash   string `json:"hash"`
}

// key identifies the request a locked entry answers.
func (l Locked) key() string { return requestKey(l.Git, l.Ref, l.URL, l.SHA256, l.Path) }

func requestKey(git, ref, url, sha, path string) string {
	if git != "" {
		return "git\x00" + git + "\x00" + ref + "\x00" + path
	}
	return "url\x00" + url + "\x00" + sha + "\x00" + path
}

// describe is the request as messages show it.
func (l Locked) describe() string {
	d := host.Dep{Git: l.Git, Ref: l.Ref, URL: l.URL, SHA256: l.SHA256, Path: l.Path}
	return d.Source()
}

var (
	commitHex   = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	contentHash = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
)

// ReadLock reads root/imgbuild.lock; nil, nil when there is none.
func ReadLock(root string) (*Lock, error) {
	data, err := os.ReadFile(filepath.Join(root, LockFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ParseLock(data)
}

// ParseLock parses and checks the text of a lock. Errors name the file
// and say how to repair it.
func ParseLock(data []byte) (*Lock, error) {
	var l Lock
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&l); err != nil {
		return nil, fmt.Errorf("%s: %v: it is written by imgbuild mod download; restore it from version control, or delete it and run imgbuild mod download", LockFile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%s: text after the lock: restore it from version control, or delete it and run imgbuild mod download", LockFile)
	}
	if l.Version != lockVersion {
		return nil, fmt.Errorf("%s: version %d, this imgbuild reads version %d: upgrade imgbuild, or delete the lock and run imgbuild mod download", LockFile, l.Version, lockVersion)
	}
	seen := map[string]bool{}
	names := map[string]string{}
	for i, m := range l.Modules {
		if err := m.check(); err != nil {
			return nil, fmt.Errorf("%s: module %d (%q): %v", LockFile, i+1, m.Name, err)
		}
		if seen[m.key()] {
			return nil, fmt.Errorf("%s: %s is locked twice", LockFile, m.describe())
		}
		seen[m.key()] = true
		if h, ok := names[m.Name]; ok && h != m.Hash {
			return nil, fmt.Errorf("%s: two different modules are named %q", LockFile, m.Name)
		}
		names[m.Name] = m.Hash
	}
	return &l, nil
}

func (m Locked) check() error {
	if !host.ValidName(m.Name) {
		return fmt.Errorf("name %q is not a module name", m.Name)
	}
	switch {
	case m.Git != "" && m.URL != "", m.Git == "" && m.URL == "":
		return errors.New("give git or url")
	case m.Git != "":
		if m.Ref == "" || m.SHA256 != "" || !commitHex.MatchString(m.Commit) {
			return errors.New("a git module has a ref and a commit (40 or 64 hex digits), and no sha256")
		}
	default:
		if !sha256Hex.MatchString(m.SHA256) || m.Ref != "" || m.Commit != "" {
			return errors.New("a url module has a sha256 (64 hex digits), and no ref or commit")
		}
	}
	dep := host.Dep{Name: m.Name, Git: m.Git, Ref: m.Ref, URL: m.URL, SHA256: m.SHA256, Path: m.Path}
	if err := host.CheckDep(dep); err != nil {
		return err
	}
	if !contentHash.MatchString(m.Hash) {
		return fmt.Errorf("hash %q is not sha256: and 64 hex digits", m.Hash)
	}
	return nil
}

var sha256Hex = regexp.MustCompile(`^[0-9a-f]{64}$`)

// find returns the entry answering a request.
func (l *Lock) find(key string) (Locked, bool) {
	if l == nil {
		return Locked{}, false
	}
	for _, m := range l.Modules {
		if m.key() == key {
			return m, true
		}
	}
	return Locked{}, false
}

// byName returns the entries named name.
func (l *Lock) byName(name string) []Locked {
	if l == nil {
		return nil
	}
	var out []Locked
	for _, m := range l.Modules {
		if m.Name == name {
			out = append(out, m)
		}
	}
	return out
}

// sortLock orders the entries by name, then request, so that the file
// is the same whatever order modules were fetched in.
func (l *Lock) sort() {
	sort.Slice(l.Modules, func(i, j int) bool {
		a, b := l.Modules[i], l.Modules[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.key() < b.key()
	})
}

// Marshal is the lock's text: indented JSON, entries sorted, ending in a
// newline, so that a change reads well in a diff.
func (l *Lock) Marshal() []byte {
	out := Lock{Version: lockVersion, Modules: append([]Locked{}, l.Modules...)}
	if out.Modules == nil {
		out.Modules = []Locked{}
	}
	out.sort()
	data, _ := json.MarshalIndent(out, "", "  ")
	return append(data, '\n')
}

// WriteLock writes root/imgbuild.lock atomically.
func WriteLock(root string, l *Lock) error {
	return renameio.WriteFile(filepath.Join(root, LockFile), l.Marshal(), 0o644)
}

// equal reports whether two locks say the same.
func (l *Lock) equal(o *Lock) bool {
	if l == nil || o == nil {
		return l == o
	}
	return bytes.Equal(l.Marshal(), o.Marshal())
}

// diff names what differs from old to l, for the message a run prints
// when it updates the lock: "added platform (git … ref v1.2.0, commit
// 0123456)".
func (l *Lock) diff(old *Lock) []string {
	var out []string
	for _, m := range l.Modules {
		o, ok := old.find(m.key())
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("added %s (%s)", m.Name, m.version()))
		case o.Hash != m.Hash || o.Commit != m.Commit:
			out = append(out, fmt.Sprintf("updated %s: %s → %s", m.Name, o.version(), m.version()))
		}
	}
	if old != nil {
		for _, o := range old.Modules {
			if _, ok := l.find(o.key()); !ok {
				out = append(out, fmt.Sprintf("removed %s (%s)", o.Name, o.version()))
			}
		}
	}
	return out
}

// version is how messages name what an entry locks: "git … ref v1.2.0,
// commit 0123456789ab".
func (l Locked) version() string {
	s := l.describe()
	if l.Commit != "" {
		s += ", commit " + l.Commit[:12]
	}
	return s
}

// Names lists the lock's module names, sorted and distinct.
func (l *Lock) Names() []string {
	seen := map[string]bool{}
	var out []string
	if l == nil {
		return nil
	}
	for _, m := range l.Modules {
		if !seen[m.Name] {
			seen[m.Name] = true
			out = append(out, m.Name)
		}
	}
	sort.Strings(out)
	return out
}

// shortList joins names for a message.
func shortList(names []string) string { return strings.Join(names, ", ") }
