// Package vsphere is the vsphere_clone and vsphere_iso builders: they make
// VMware VMs and templates on vCenter (or ESXi) through govmomi.
//
// vsphere_clone clones a template; vsphere_iso creates an empty VM, attaches
// an installer ISO (on a datastore, or downloaded, verified and uploaded
// for the build), boots it and types a boot command through USB scan codes,
// serving preseed or kickstart files from a local HTTP server. Both then
// wait for the guest's address (reported by VMware Tools), provision it
// over SSH with a key made for the build and installed through guestinfo
// (cloud-init's VMware datasource, or guestinfo.imgbuild.authorized_key),
// shut it down, and capture it: a snapshot, a template, an OVF/OVA export
// with a checksum manifest, a content library item.
//
// Each build is a sequence of steps (step_*.go, one per file) whose fields
// are their inputs (the build's environment, buildEnv, and the earlier
// steps they read) and outputs; the VM they work on is a vmHandle. Build
// wires them (build.go). Everything a build creates carries its random id
// (the imgbuild.build advanced setting on VMs, a directory of its own on
// datastores) and is removed by the cleanup of the step that made it when
// the build fails or is cancelled; nothing is ever removed that does not
// carry that id. Names are checked before anything is created, and a
// replaced VM (force) is only removed once the new one is complete.
//
// Connection keywords default to govc's environment (GOVC_URL,
// GOVC_USERNAME, GOVC_PASSWORD, GOVC_INSECURE, GOVC_DATACENTER), read when
// the build runs, not when the description is evaluated.
//
// The package knows nothing of Starlark: its configs are schema-tagged
// structs the builtins layer decodes keyword arguments into, and Register
// adds the two builders to an engine.Registry.
package vsphere
