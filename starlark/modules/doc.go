// Package modules fetches, caches, locks and vendors the modules a
// workspace depends on, and resolves them into a graph the Starlark host
// loads from.
//
// A workspace's imgbuild.mod declares its dependencies (host.ParseMod):
// a git repository at a tag, branch or commit (through the git binary, so
// that the user's own SSH keys, agent and credential helpers work), an
// archive at a URL with its sha256, or a directory on disk. Each module
// may declare its own, by its own names: @name// resolves per module.
// Resolve walks the graph breadth-first, fetching each level's modules in
// parallel, and refuses a module wanted at two versions (showing both
// paths to it) and modules that depend on each other in a ring.
//
// imgbuild.lock records, for every fetched module, the request, the
// commit it resolved to and the content hash of its tree (HashTree
// defines it). Loads always use the locked versions and check the hash;
// what the lock lacks is resolved and added, unless Options.Locked makes
// a missing or stale lock an error. The cache (Cache) keeps trees by
// commit or archive digest, so that after one download runs are offline;
// a cached tree that was changed on disk is detected by its hash and made
// again, or refused when even a new fetch does not match. VendorDir, when
// present, replaces the cache.
//
// The package knows no platform and evaluates no Starlark: it reads
// imgbuild.mod files with starlark/host and hands directories to it.
//
// resolve.go is over 500 lines: resolving the module graph (fetching in
// parallel, honouring the lock, vendor and cache, detecting conflicts and
// cycles) is one algorithm whose parts share the resolver's state.
package modules
