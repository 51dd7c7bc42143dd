// Package output is the one place where imgbuild writes the files a build
// leaves in the workspace (a disk image, an output directory, a box, a
// checksum file, a manifest) and its own files under .imgbuild/ (state).
//
// Its contract:
//   - Nothing is ever half-written where a reader looks: a file is written
//     under a temporary name in the directory it belongs to, synced, and
//     renamed into place (WriteFile); a build's output directory holds only
//     files that are complete (Dir.Begin, Dir.Done).
//   - A failed build removes what it made (Dir.Cleanup) and nothing else.
//
// It lives under engine, not drivers, because both need it: the engine
// writes the state file with it and the engine may import no driver. It
// knows nothing of Starlark and nothing of any platform.
package output
