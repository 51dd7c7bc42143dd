package rootfs

// CheckpointKey is checkpointKey, for the tests of package rootfs_test.
var CheckpointKey = checkpointKey
