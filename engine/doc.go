// Package engine holds the build graph, the plan, the scheduler that runs it
// with bounded parallelism, artifacts and state, and the interfaces drivers
// implement (Builder, Provisioner, PostProcessor, Communicator).
//
// It knows nothing of Starlark (the builtins package records nodes into a
// Graph) and nothing of any platform (drivers register themselves into a
// Registry that the command wires up).
package engine
