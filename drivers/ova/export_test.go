package ova

// SetChunking makes disks over max bytes split in chunks of chunk bytes,
// for a test; the returned function puts the limits back.
func SetChunking(max, chunk int64) func() {
	oldMax, oldChunk := maxMember, chunkSize
	maxMember, chunkSize = max, chunk
	return func() { maxMember, chunkSize = oldMax, oldChunk }
}
