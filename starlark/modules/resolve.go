package modules

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/imgbuild/imgbuild/starlark/host"
)

// VendorDir is where imgbuild mod vendor copies the fetched modules, one
// directory per module name; when it exists, loads read from it and
// nothing is fetched.
const VendorDir = "third_party/imgbuild"

// Options say how to resolve a workspace's modules.
type Options struct {
	// Root is the workspace root, holding imgbuild.mod and imgbuild.lock.
	Root string
	// Cache is the module cache.
	Cache *Cache
	// Locked makes a missing or stale lock an error, instead of resolving
	// what it lacks (--locked; CI=true).
	Locked bool
	// Update names the modules whose refs are asked again (imgbuild mod
	// update NAME): by the name a module is declared by, or its module
	// name. UpdateAll asks every ref again.
	Update    []string
	UpdateAll bool
	// IgnoreVendor fetches into the cache even when the workspace has a
	// vendor directory (imgbuild mod vendor, mod download).
	IgnoreVendor bool
	// Check only looks: nothing is fetched or repaired; a module missing
	// from the cache or whose content is not what the lock says is noted
	// in Graph.Problems (imgbuild mod verify).
	Check bool
	// Parallel bounds the fetches running at once; 0 means 8.
	Parallel int
	// Progress, if set, is told each fetch and repair.
	Progress func(msg string)
}

// Graph is a workspace's resolved modules.
type Graph struct {
	// Root is the workspace root; Name its module(name = ...), or "".
	Root, Name string
	// Modules are the modules, by canonical name.
	Modules map[string]*Module
	// Deps maps each scope ("" for the workspace, else a canonical module
	// name) to the names it declares and the canonical name each resolved
	// to: what host.Host.Deps takes.
	Deps map[string]map[string]string
	// Lock is the lock as it should be; Old what imgbuild.lock held (nil
	// when there was none).
	Lock, Old *Lock
	// Vendored is true when the modules were read from VendorDir.
	Vendored bool
	// Problems maps a module's name to what is wrong with it on disk
	// (Options.Check only).
	Problems map[string]string
	// Why maps each module to the first chain of modules that led to it,
	// from the workspace.
	via map[string][]string
	// Declared holds, per scope, the dep(...) declarations.
	declared map[string][]host.Dep
}

// Module is one resolved module.
type Module struct {
	// Name is the canonical name: the one in its labels (@Name//x.star).
	Name string
	// Dep is how it was first asked for (Path joined onto the declaring
	// module's own for a path dependency of a fetched module).
	Dep host.Dep
	// Dir is its directory: in the cache, the vendor directory, or on
	// disk for a path dependency.
	Dir string
	// Commit is the git commit, for a git module.
	Commit string
	// Hash is the content hash of Dir (HashTree).
	Hash string
	// Local is true for a path dependency of the workspace (or of another
	// local module): not fetched, not locked.
	Local bool
}

// Version is how messages name what a module is: "v1.2.0 (commit
// 0123456789ab)", "archive sha256 …", "path ../shared".
func (m *Module) Version() string {
	switch m.Dep.Kind() {
	case "git":
		if m.Dep.Ref == m.Commit {
			return "commit " + m.Commit[:12]
		}
		return m.Dep.Ref + " (commit " + m.Commit[:12] + ")"
	case "url":
		return "archive sha256 " + m.Dep.SHA256[:12]
	}
	return "path " + m.Dir
}

// HostModules is the module directories by canonical name, for
// host.Host.Modules.
func (g *Graph) HostModules() map[string]string {
	out := map[string]string{}
	for n, m := range g.Modules {
		out[n] = m.Dir
	}
	return out
}

// Hashes maps each module's canonical name to its content hash.
func (g *Graph) Hashes() map[string]string {
	out := map[string]string{}
	for n, m := range g.Modules {
		out[n] = m.Hash
	}
	return out
}

// LockChanges names what the resolved lock changes in imgbuild.lock
// (nil when nothing).
func (g *Graph) LockChanges() []string {
	if g.Lock.equal(g.Old) || (g.Old == nil && len(g.Lock.Modules) == 0) {
		return nil
	}
	return g.Lock.diff(g.Old)
}

// source is where a requested module comes from, once a path dependency
// of a fetched module is turned into the same repository or archive with
// a longer path.
type source struct {
	dep   host.Dep // Git/Ref/URL/SHA256/Path as fetched, or Path = a directory for local
	dir   string   // local: the directory
	local bool
}

func (s source) key() string {
	if s.local {
		return "path\x00" + s.dir
	}
	return requestKey(s.dep.Git, s.dep.Ref, s.dep.URL, s.dep.SHA256, s.dep.Path)
}

// request is one dep(...) to resolve.
type request struct {
	scope string   // canonical name of the declaring module; "" for the workspace
	dep   host.Dep // as declared
	src   source
	chain []string // canonical names from the workspace to scope
}

// fetched is what a source resolved to.
type fetched struct {
	dir, commit, hash string
	locked            Locked // the lock entry, for a fetched module
	err               error
	problem           string // Options.Check: what is wrong on disk
	missing           bool   // Options.Check: not on disk at all
}

type resolver struct {
	opts     Options
	old      *Lock
	vendor   bool
	mu       sync.Mutex
	stale    []string
	newLock  map[string]Locked
	progress func(string)
}

// Resolve reads the workspace's imgbuild.mod, and those of every module
// it leads to, and returns the graph: each module fetched (or found in the
// cache, or vendored) at the version imgbuild.lock pins, its content
// checked against the lock's hash. What the lock lacks is resolved and
// added (an error with Locked); entries nothing asks for any more are
// dropped. The lock file itself is not written: see Graph.Lock and
// WriteLock.
func Resolve(ctx context.Context, opts Options) (*Graph, error) {
	mod, err := host.ReadModFile(opts.Root)
	if err != nil {
		return nil, err
	}
	old, err := ReadLock(opts.Root)
	if err != nil {
		return nil, err
	}
	r := &resolver{opts: opts, old: old, newLock: map[string]Locked{}, progress: opts.Progress}
	if r.progress == nil {
		r.progress = func(string) {}
	}
	if st, err := os.Stat(filepath.Join(opts.Root, VendorDir)); err == nil && st.IsDir() && !opts.IgnoreVendor {
		r.vendor = true
	}
	g := &Graph{
		Root: opts.Root, Name: mod.Name, Old: old, Vendored: r.vendor,
		Modules:  map[string]*Module{},
		Problems: map[string]string{},
		Deps:     map[string]map[string]string{"": {}},
		via:      map[string][]string{},
		declared: map[string][]host.Dep{"": mod.Deps},
	}
	rootID := mod.Name
	if rootID == "" {
		rootID = "path:" + opts.Root
	}
	identity := map[string]string{rootID: ""} // identity → canonical name ("" is the workspace)
	var frontier []request
	for _, d := range mod.Deps {
		frontier = append(frontier, request{scope: "", dep: d, src: localSource(opts.Root, d)})
	}
	for len(frontier) > 0 {
		results := r.fetchAll(ctx, frontier)
		if len(r.stale) > 0 {
			return nil, r.staleError()
		}
		var next []request
		for _, req := range frontier {
			res := results[req.src.key()]
			if res.err != nil {
				return nil, fmt.Errorf("%s: %w", declaredAt(req), res.err)
			}
			if res.missing {
				g.Problems[res.locked.Name] = res.problem
				r.keep(res.locked, res.locked.Name)
				continue
			}
			sub, err := host.ReadModFile(res.dir)
			if err != nil {
				return nil, fmt.Errorf("%s: reading its %s: %w", declaredAt(req), host.ModFile, err)
			}
			id := sub.Name
			if id == "" {
				id = req.src.identity()
			}
			if canon, seen := identity[id]; seen {
				if canon == "" {
					return nil, fmt.Errorf("module cycle: %s → %s, which is the workspace itself", g.chainText(req.chain), req.dep.Name)
				}
				have := g.Modules[canon]
				if have.Hash != res.hash {
					return nil, g.conflict(have, req, res)
				}
				g.Deps[req.scope][req.dep.Name] = canon
				continue
			}
			canon := canonicalName(sub.Name, req.dep.Name, id, g.Modules)
			identity[id] = canon
			m := &Module{Name: canon, Dep: req.src.dep, Dir: res.dir, Commit: res.commit, Hash: res.hash, Local: req.src.local}
			m.Dep.Name, m.Dep.Pos = req.dep.Name, req.dep.Pos
			if req.src.local {
				m.Dep.Path = req.src.dir
			} else {
				r.keep(res.locked, canon)
			}
			if res.problem != "" {
				g.Problems[canon] = res.problem
			}
			g.Modules[canon] = m
			g.Deps[req.scope][req.dep.Name] = canon
			g.Deps[canon] = map[string]string{}
			for i := range sub.Deps {
				sub.Deps[i].Pos = "@" + canon + "//" + sub.Deps[i].Pos
			}
			g.declared[canon] = sub.Deps
			g.via[canon] = append(slices.Clone(req.chain), canon)
			for _, d := range sub.Deps {
				src, err := childSource(m, d)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", declaredAt(request{scope: canon, dep: d}), err)
				}
				next = append(next, request{scope: canon, dep: d, src: src, chain: g.via[canon]})
			}
		}
		frontier = next
	}
	if err := g.checkCycles(); err != nil {
		return nil, err
	}
	if err := g.checkUpdateNames(opts.Update); err != nil {
		return nil, err
	}
	g.Lock = &Lock{Version: lockVersion}
	for _, l := range r.newLock {
		g.Lock.Modules = append(g.Lock.Modules, l)
	}
	g.Lock.sort()
	if (opts.Locked || r.vendor) && !opts.Check {
		var unused []string
		for _, o := range old.modulesOrNil() {
			if _, ok := r.newLock[o.key()]; !ok {
				unused = append(unused, fmt.Sprintf("the lock still has %s (%s), which nothing depends on now", o.Name, o.describe()))
			}
		}
		if len(unused) > 0 {
			r.stale = unused
			return nil, r.staleError()
		}
	}
	return g, nil
}

func (l *Lock) modulesOrNil() []Locked {
	if l == nil {
		return nil
	}
	return l.Modules
}

// localSource is the source of a dependency the workspace declares.
func localSource(dir string, d host.Dep) source {
	if d.Kind() == "path" {
		p := d.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, filepath.FromSlash(p))
		}
		return source{dep: d, dir: filepath.Clean(p), local: true}
	}
	return source{dep: d}
}

// childSource is the source of a dependency module m declares: a path
// dependency of a fetched module is the same repository or archive, at
// the same commit, with a path of its own inside it.
func childSource(m *Module, d host.Dep) (source, error) {
	if d.Kind() != "path" {
		return source{dep: d}, nil
	}
	if m.Local {
		return localSource(m.Dir, d), nil
	}
	if filepath.IsAbs(d.Path) {
		return source{}, fmt.Errorf("path %s: a fetched module can only name a directory of its own repository or archive", d.Path)
	}
	p := path.Join(m.Dep.Path, d.Path)
	if p == ".." || strings.HasPrefix(p, "../") {
		return source{}, fmt.Errorf("path %s leads outside %s", d.Path, m.Dep.Source())
	}
	if p == "." {
		p = ""
	}
	src := source{dep: host.Dep{Name: d.Name, Git: m.Dep.Git, URL: m.Dep.URL, SHA256: m.Dep.SHA256, Path: p, Pos: d.Pos}}
	if m.Dep.Git != "" {
		src.dep.Ref = m.Commit
	}
	return src, nil
}

// identity is what makes two requests the same module when neither
// declares a module(name = ...): the repository or archive and the path
// in it, or the directory.
func (s source) identity() string {
	switch {
	case s.local:
		return "path:" + s.dir
	case s.dep.Git != "":
		return "git:" + s.dep.Git + "#" + s.dep.Path
	}
	return "url:" + s.dep.URL + "#" + s.dep.Path
}

// canonicalName is the module's own name, else the name it was first
// asked for by, made unique when another module took it.
func canonicalName(declared, asked, id string, taken map[string]*Module) string {
	if declared != "" {
		return declared
	}
	if _, used := taken[asked]; !used {
		return asked
	}
	sum := sha256.Sum256([]byte(id))
	return asked + "-" + hex.EncodeToString(sum[:3])
}

// declaredAt names a request for messages: `dep "platform"
// (imgbuild.mod:2:1)`, or `dep "plat" of module security
// (@security//imgbuild.mod:2:1)`.
func declaredAt(r request) string {
	if r.scope == "" {
		return fmt.Sprintf("dep %q (%s)", r.dep.Name, r.dep.Pos)
	}
	return fmt.Sprintf("dep %q of module %s (%s)", r.dep.Name, r.scope, r.dep.Pos)
}

// fetchAll resolves the frontier's distinct sources, in parallel.
func (r *resolver) fetchAll(ctx context.Context, frontier []request) map[string]*fetched {
	results := map[string]*fetched{}
	var wg sync.WaitGroup
	n := r.opts.Parallel
	if n <= 0 {
		n = 8
	}
	sem := make(chan struct{}, n)
	for _, req := range frontier {
		k := req.src.key()
		if _, ok := results[k]; ok {
			continue
		}
		res := &fetched{}
		results[k] = res
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			*res = r.fetch(ctx, req)
		}()
	}
	wg.Wait()
	return results
}

// keep records a lock entry under the module's canonical name.
func (r *resolver) keep(l Locked, name string) {
	l.Name = name
	r.newLock[l.key()] = l
}

func (r *resolver) addStale(msg string) {
	r.mu.Lock()
	r.stale = append(r.stale, msg)
	r.mu.Unlock()
}

func (r *resolver) staleError() error {
	sort.Strings(r.stale)
	what := "--locked"
	if r.vendor {
		what = "vendored modules are used"
	}
	if r.old == nil {
		fix := "run imgbuild mod download, and commit " + LockFile
		if r.vendor {
			fix = "run imgbuild mod vendor, and commit " + LockFile + " and " + VendorDir
		}
		return &StaleLockError{text: fmt.Sprintf("%s is missing (%s), and the workspace has modules to fetch:\n  %s\n%s", LockFile, what, strings.Join(r.stale, "\n  "), fix)}
	}
	fix := "run imgbuild mod download to update it (imgbuild mod update NAME also moves a branch or tag to its newest commit)"
	if r.vendor {
		fix = "run imgbuild mod download, then imgbuild mod vendor"
	}
	return &StaleLockError{text: fmt.Sprintf("%s is stale (%s):\n  %s\n%s", LockFile, what, strings.Join(r.stale, "\n  "), fix)}
}

// StaleLockError is a missing or stale imgbuild.lock where it must be
// complete (Options.Locked, a vendor directory): what changed, and the
// command that updates it.
type StaleLockError struct{ text string }

func (e *StaleLockError) Error() string { return e.text }

// updating reports whether the request's ref is to be asked again.
func (r *resolver) updating(req request, entry Locked) bool {
	if r.opts.UpdateAll {
		return true
	}
	for _, n := range r.opts.Update {
		if n == req.dep.Name || n == entry.Name {
			return true
		}
	}
	return false
}

// fetch resolves one source.
func (r *resolver) fetch(ctx context.Context, req request) fetched {
	src := req.src
	if src.local {
		st, err := os.Stat(src.dir)
		if err != nil || !st.IsDir() {
			return fetched{err: fmt.Errorf("the directory %s does not exist", src.dir)}
		}
		h, err := HashTree(src.dir)
		return fetched{dir: src.dir, hash: h, err: err}
	}
	d := src.dep
	key := src.key()
	entry, found := r.old.find(key)
	pinned := d.Git != "" && commitHex.MatchString(d.Ref) // a commit does not move
	if found && !pinned && r.updating(req, entry) {
		found = false
	}
	if !found && (r.opts.Locked || r.vendor || r.opts.Check) {
		r.addStale(r.whatChanged(req))
		return fetched{err: errors.New("stale lock")}
	}
	if r.vendor {
		return r.fromVendor(entry)
	}
	c := r.opts.Cache
	if r.opts.Check {
		return r.check(entry)
	}
	var res fetched
	switch {
	case d.Git != "":
		commit, fetchRef := entry.Commit, ""
		if !found {
			var err error
			commit, fetchRef, err = c.resolveRef(ctx, d.Git, d.Ref)
			if err != nil {
				return fetched{err: err}
			}
			if fetchRef == "*" {
				commit = d.Ref // an abbreviation, expanded by fetchGit
			}
		}
		if !exists(c.gitTree(commit)) || fetchRef == "*" {
			r.progress(fmt.Sprintf("fetching %s (%s)", req.dep.Name, d.Source()))
		}
		dir, full, err := c.fetchGit(ctx, d.Git, commit, fetchRef)
		if err != nil {
			return fetched{err: err}
		}
		res = fetched{dir: dir, commit: full}
	default:
		if !exists(c.urlTree(d.SHA256)) {
			r.progress(fmt.Sprintf("downloading %s (%s)", req.dep.Name, d.URL))
		}
		dir, err := c.fetchURL(ctx, d.URL, d.SHA256)
		if err != nil {
			return fetched{err: err}
		}
		res = fetched{dir: dir}
	}
	tree := res.dir
	mdir, err := moduleDir(tree, d)
	if err != nil {
		return fetched{err: err}
	}
	h, err := HashTree(mdir)
	if err != nil {
		return fetched{err: err}
	}
	if found && h != entry.Hash {
		r.progress(fmt.Sprintf("the cached copy of %s (%s) was changed on disk: fetching it again", entry.Name, ShortHash(entry.Hash)))
		good := func(dir string) bool {
			md, err := moduleDir(dir, d)
			if err != nil {
				return false
			}
			got, err := HashTree(md)
			return err == nil && got == entry.Hash
		}
		if d.Git != "" {
			tree, err = c.refetchGit(ctx, d.Git, res.commit, good)
		} else {
			tree, err = c.refetchURL(ctx, d.URL, d.SHA256)
		}
		if err != nil {
			return fetched{err: err}
		}
		if mdir, err = moduleDir(tree, d); err != nil {
			return fetched{err: err}
		}
		if h, err = HashTree(mdir); err != nil {
			return fetched{err: err}
		}
		if h != entry.Hash {
			return fetched{err: &HashMismatchError{Name: entry.Name, Source: entry.version(), Want: entry.Hash, Got: h}}
		}
	}
	l := Locked{Git: d.Git, Ref: d.Ref, URL: d.URL, SHA256: d.SHA256, Path: d.Path, Commit: res.commit, Hash: h}
	return fetched{dir: mdir, commit: res.commit, hash: h, locked: l}
}

// check looks at a locked module in the cache.
func (r *resolver) check(entry Locked) fetched {
	c := r.opts.Cache
	tree := c.urlTree(entry.SHA256)
	if entry.Git != "" {
		tree = c.gitTree(entry.Commit)
	}
	d := host.Dep{Git: entry.Git, Ref: entry.Ref, URL: entry.URL, SHA256: entry.SHA256, Path: entry.Path}
	mdir, err := moduleDir(tree, d)
	if !exists(tree) || err != nil {
		return fetched{missing: true, locked: entry, problem: fmt.Sprintf("not in the module cache (%s): imgbuild mod download fetches it", tree)}
	}
	res := fetched{dir: mdir, commit: entry.Commit, hash: entry.Hash, locked: entry}
	got, err := HashTree(mdir)
	switch {
	case err != nil:
		res.problem = err.Error()
	case got != entry.Hash:
		res.problem = fmt.Sprintf("%s hashes to %s, but %s says %s: the cached copy was changed on disk (the next plan or run fetches it again), or the lock was edited (then the next plan or run refuses it)", mdir, got, LockFile, entry.Hash)
	}
	return res
}

// moduleDir is the module's directory in a fetched tree.
func moduleDir(tree string, d host.Dep) (string, error) {
	if d.Path == "" {
		return tree, nil
	}
	dir := filepath.Join(tree, filepath.FromSlash(d.Path))
	st, err := os.Lstat(dir)
	if err != nil || !st.IsDir() {
		return "", fmt.Errorf("%s has no directory %s", d.Source(), d.Path)
	}
	return dir, nil
}

// fromVendor is a locked module read from the vendor directory.
func (r *resolver) fromVendor(entry Locked) fetched {
	dir := filepath.Join(r.opts.Root, VendorDir, entry.Name)
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return fetched{err: fmt.Errorf("module %s is not in %s: run imgbuild mod vendor", entry.Name, VendorDir)}
	}
	h, err := HashTree(dir)
	if err != nil {
		return fetched{err: err}
	}
	if h != entry.Hash {
		err := &HashMismatchError{Name: entry.Name, Source: entry.version(), Want: entry.Hash, Got: h, Vendored: dir}
		if r.opts.Check {
			return fetched{dir: dir, commit: entry.Commit, hash: entry.Hash, locked: entry, problem: err.Error()}
		}
		return fetched{err: err}
	}
	return fetched{dir: dir, commit: entry.Commit, hash: h, locked: entry}
}

// whatChanged says why a request is not in the lock.
func (r *resolver) whatChanged(req request) string {
	d := req.src.dep
	at := declaredAt(req)
	for _, o := range r.old.modulesOrNil() {
		if o.Name == req.dep.Name || (d.Git != "" && o.Git == d.Git && o.Path == d.Path) || (d.URL != "" && o.URL == d.URL) {
			return fmt.Sprintf("%s asks for %s; the lock has %s", at, d.Source(), o.describe())
		}
	}
	return fmt.Sprintf("%s (%s) is not in the lock", at, d.Source())
}

// HashMismatchError is a module whose content is not what the lock says.
type HashMismatchError struct {
	Name, Source, Want, Got string
	// Vendored is the vendor directory, when the module came from there.
	Vendored string
}

func (e *HashMismatchError) Error() string {
	if e.Vendored != "" {
		return fmt.Sprintf("module %s in %s hashes to %s, but %s says %s: the vendored copy was changed; run imgbuild mod vendor to restore it", e.Name, e.Vendored, e.Got, LockFile, e.Want)
	}
	return fmt.Sprintf("module %s (%s) hashes to %s, but %s says %s, even fetched again: the repository or archive now serves other content for the same version (history rewritten?), or the lock was edited; check what changed, then run imgbuild mod update %s to accept it", e.Name, e.Source, e.Got, LockFile, e.Want, e.Name)
}

// conflict is the error for one module wanted at two versions.
func (g *Graph) conflict(have *Module, req request, res *fetched) error {
	other := &Module{Name: have.Name, Dep: req.src.dep, Commit: res.commit, Hash: res.hash, Dir: res.dir}
	if req.src.local {
		other.Dep.Path = req.src.dir
	}
	first := g.chainText(g.via[have.Name][:len(g.via[have.Name])-1]) + " → " + asName(have.Name, have.Dep.Name)
	second := g.chainText(req.chain) + " → " + asName(have.Name, req.dep.Name)
	return fmt.Errorf("module %s is wanted at two versions:\n  %s: %s (%s)\n  %s: %s (%s)\ndepend on one version: change one of them (imgbuild mod why %s shows every path to it)",
		have.Name, have.Version(), first, have.Dep.Pos, other.Version(), second, req.dep.Pos, have.Name)
}

func asName(canon, asked string) string {
	if canon == asked {
		return canon
	}
	return fmt.Sprintf("%s (as %q)", canon, asked)
}

// chainText shows a chain of canonical names from the workspace.
func (g *Graph) chainText(chain []string) string {
	return strings.Join(append([]string{g.rootName()}, chain...), " → ")
}

func (g *Graph) rootName() string {
	if g.Name != "" {
		return g.Name + " (workspace)"
	}
	return "workspace"
}

// checkCycles refuses modules that depend on each other in a ring.
func (g *Graph) checkCycles() error {
	const (
		unseen = iota
		active
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(n string) error
	visit = func(n string) error {
		state[n] = active
		stack = append(stack, n)
		deps := g.Deps[n]
		names := make([]string, 0, len(deps))
		for _, c := range deps {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			switch state[c] {
			case active:
				i := slices.Index(stack, c)
				ring := append(slices.Clone(stack[i:]), c)
				return fmt.Errorf("module cycle: %s: modules may not depend on each other in a ring", strings.Join(ring, " → "))
			case unseen:
				if err := visit(c); err != nil {
					return err
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	names := make([]string, 0, len(g.Modules))
	for n := range g.Modules {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if state[n] == unseen {
			if err := visit(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// checkUpdateNames refuses a name to update that names no module.
func (g *Graph) checkUpdateNames(names []string) error {
	for _, n := range names {
		if _, ok := g.Modules[n]; ok {
			continue
		}
		found := false
		for _, deps := range g.Deps {
			if _, ok := deps[n]; ok {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("no module is named %q (modules: %s)", n, shortList(g.names()))
		}
	}
	return nil
}

// names lists the modules' canonical names, sorted.
func (g *Graph) names() []string {
	out := make([]string, 0, len(g.Modules))
	for n := range g.Modules {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}
