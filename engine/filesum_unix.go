//go:build linux || darwin

package engine

import (
	"io/fs"
	"syscall"
)

// changeTimeAndInode reads what a rewrite of a file always changes.
func changeTimeAndInode(st fs.FileInfo) (int64, uint64) {
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0
	}
	return ctimeOf(sys), uint64(sys.Ino)
}
