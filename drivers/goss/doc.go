// Package goss holds the goss() provisioner, meant for a build's tests =
// [...]: it uploads a goss binary (goss_path, a file on this machine) and
// the gossfiles (tests) to a directory of its own on the build's machine,
// runs `goss -g FILE validate` there over the communicator, and removes
// the directory again.
//
// Its keywords are those of Packer's goss provisioner where the concept is
// the same (tests, goss_file, vars_file, vars_inline, vars_env, format,
// format_options, retry_timeout, sleep, use_sudo, remote_folder,
// remote_path, package); unlike Packer's it never downloads goss on the
// machine: the binary comes from this machine, as goss_path.
//
// With format = "json" (the default) the result is read, each check is
// shown as one line, and a failure names the checks that failed with
// goss's own summary of each. Other formats stream goss's output as it
// is.
//
// The package knows nothing of Starlark: the builtins layer decodes
// keyword arguments into Config.
package goss
