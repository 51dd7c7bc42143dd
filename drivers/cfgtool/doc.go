// Package cfgtool holds what the configuration-management provisioners
// (ansible(), ansible_local(), puppet_apply(), chef_solo()) share: a
// staging directory on the build's machine that files are uploaded to and
// that goes when the tool has run; installing the tool through the
// machine's package manager (apt-get or dnf); running its command with the
// output streamed and the lines an error needs kept; attempts with
// max_retries; and settings values turned into the JSON a tool reads.
// Its Lines also keeps the stderr lines shell() and shell_local() quote
// when a script fails.
//
// Like every provisioner it reaches the machine only through
// engine.Communicator, and knows nothing of Starlark.
package cfgtool
