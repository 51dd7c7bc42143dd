// Package render turns the event stream of a run into what people and
// machines read: plain prefixed lines, a live status board on a terminal,
// JSON lines, per-build log files, and a summary table at the end.
//
// Every renderer is an event.Sink fed by an event.Bus, which redacts
// secrets before any sink sees an event; renderers never see a secret and
// never print anything that did not come through an event. The package knows
// nothing of Starlark or of any platform: it reads events and, for the
// summary, engine results.
//
// # Plain lines
//
// Each line of a build carries its name, padded to the longest build name
// queued, then a separator: "|" for the tool's own lines and standard output,
// "!" for lines a command wrote to standard error:
//
//	base | build started (local)
//	base | ==> provision: shell
//	base | Reading package lists...
//	base ! debconf: unable to initialize frontend
//	base | warning: disk almost full
//	base | upload disk.qcow2: 50% (512.0 MiB of 1.0 GiB)
//	base | build succeeded in 12.3s: ami-123
//	web  | build skipped: it needs "base", which failed
//
// Steps start with "==>". Progress is printed sparingly: for each build and
// label, when it crosses a tenth of its total, when it ends, or when five
// seconds have passed with a change. With timestamps, every line starts with
// the event's time of day as "15:04:05.000" (the time zone of the event's
// clock, local for a Bus); the log files carry full RFC 3339 times. Terminal
// control sequences in command output are removed, and a line rewritten with
// carriage returns shows its last version.
//
// # Colour
//
// With colour on, each build's prefix has a colour of its own, steps are
// bold, warnings orange and failures red. With colour off not one escape
// sequence is written.
//
// render_test.go is over 500 lines: the golden tests of every renderer share
// one set of scripted events.
package render
