// Package testkit is the one place for what imgbuild's tests share: the
// integration-skip rule, an event recorder, workspace writers, copying
// and listing trees, reading tar archives, a driver made from a call's
// settings, a free port for a counterpart, a buffer safe to read while a
// command writes it, a way to run a test as an unprivileged user, the
// processes below one, waiting on a condition, and checking output
// against wanted parts or a golden file.
//
// The rule for a test whose tool or counterpart is missing: on a
// developer's machine it skips with a message saying what to install; when
// IMGBUILD_INTEGRATION=1 is set (CI sets it) it fails, so CI never passes
// by skipping. Every skip in the tree goes through [Skip] (or the helpers
// built on it: [Require], [RequireProgram], [RequireRoot]); the only other
// ways out are [SkipIfShort] for slow tests, [OptIn] for benchmarks kept
// out of the suite, and [ChildEnv] for a test that is only a child process
// of another.
//
// Tests never wait with time.Sleep: they wait on what they expect, with
// [Eventually] (a condition polled until it holds) or [Receive] (a value
// on a channel), both bounded by a deadline that only a failing test
// reaches.
//
// The API, for grep: Integration, Skip, Skipf, Require, RequireProgram,
// RequireRoot, SkipIfShort, OptIn, ChildEnv; Recorder (NewUI, Recorder.UI,
// Recorder.Bus, Recorder.OnEvent, Events, Of, Steps, StepTimes, Messages,
// Lines, Log, JSON, FailedTest); Buffer; Workspace, WriteFile; CopyTree,
// FilesUnder, ReadTar, ReadTarFile, TarEntries, TarEntry; Settings,
// Decode, New; FreePort; RunAsNobody, WantAsNobody; Descendants, Alive,
// WaitForPIDFile, WaitGone; Eventually, EventuallyWithin, Poll, Receive,
// WaitTimeout; WantIn, Golden.
//
// testkit belongs to the engine layer: it knows no Starlark and no
// platform. Harnesses of one driver's counterpart stay with that driver
// (drivers/ssh/sshtest, drivers/amazon/awstest, drivers/vsphere/vcsimtest,
// drivers/qemu/qemutest, drivers/chroot/chroottest) and use this package.
package testkit
