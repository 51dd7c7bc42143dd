// Package diskpost is what the post-processors that turn a build's disk
// into the files another platform takes (ova(), vagrant_box(),
// vmware_vmx(), disk_image()) share: finding the disk in the artifact
// with a message that says which build made what when there is none,
// converting it through qemuimg with progress, writing a tar archive
// (compressed with gzip on every core when asked) while taking its
// SHA-256, writing one output file through the build's output set, and
// passing the artifact on.
//
// It knows nothing of Starlark and of any one format.
package diskpost
