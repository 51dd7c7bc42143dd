// Package output is the one place where imgbuild writes what a build
// leaves in the workspace (a disk image, an output directory, a box, a
// checksum file, a manifest) and its own files under .imgbuild/ (state).
//
// Its contract:
//   - Outputs stay inside the workspace. A path that is absolute, leads
//     out through ".." or a symbolic link, is the workspace itself or is
//     under .imgbuild/ is refused (CheckPath), and every write goes
//     through a directory opened under the workspace's os.Root, so that a
//     link that appears later still cannot lead out.
//   - Nothing is half-written where a reader looks: a file or directory is
//     written under a temporary name beside its place (".NAME.imgbuild-new-
//     …") and moved there whole, atomically.
//   - Only what imgbuild made is replaced. Every output placed is recorded
//     under .imgbuild/outputs/ (the marker) with the build that made it
//     and the identity of each file placed. A build's own earlier outputs
//     are replaced without asking; another build's only with force;
//     anything else never: the error names it. The "already exists" check
//     is made again, atomically, when the output moves into place
//     (renameat2 RENAME_NOREPLACE or RENAME_EXCHANGE).
//   - A failed build removes what it placed and puts back what it
//     replaced (Set.Finish, Dir.Cleanup); a shared file (Set.Update, the
//     manifest) is changed atomically and only from the content its
//     writer read.
//   - A build killed while it writes leaves nothing lost: its Set records
//     itself in the run's journal before its first write, names its
//     temporary files with its id, and records each placement's intent
//     before the move; Reaper undoes what it left (see JournalKind).
//   - WriteFile is the one atomic write for imgbuild's own files.
//
// It lives under engine, not drivers, because both need it: the engine
// writes the state file with it and gives each build a Set, and the engine
// may import no driver. It knows nothing of Starlark and nothing of any
// platform. It needs Linux (renameat2, statx, openat).
//
// set.go is over 500 lines: placing a build's outputs (checks, markers,
// renameat2 with RENAME_NOREPLACE or RENAME_EXCHANGE under os.Root, and
// undoing it all on failure) is one state machine, clearer whole.
package output
