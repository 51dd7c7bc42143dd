// Package engine holds the build graph, the plan, the scheduler that runs it
// with bounded parallelism, artifacts and state, and the interfaces drivers
// implement (Builder, Provisioner, PostProcessor, Communicator).
//
// It knows nothing of Starlark (the builtins package records nodes into a
// Graph) and nothing of any platform (drivers register themselves into a
// Registry that the command wires up).
//
// run.go is over 500 lines: it is the run of the graph and of one build
// (waves, skips with their reasons, leases, panics caught, cleanups), kept
// together so the order of a build's phases reads in one place.
//
// registry.go is over 500 lines: it is the whole contract between the engine
// and the drivers (the definitions a driver registers, the environments its
// provisioners and post-processors receive, and Job, a build's handle on
// the run), kept in one file so a driver author reads it in one place.
package engine
