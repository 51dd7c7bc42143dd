// Package chef is the chef_solo() provisioner: Chef Infra Client in local
// mode on the build's machine, as Packer's chef-solo provisioner. It
// installs Chef with install_command unless chef-solo is there already
// (or skip_install is set), uploads the cookbooks, roles, data bags and
// environments to a staging directory, writes solo.rb and the node's JSON
// (json with run_list) there, and runs chef-solo -c solo.rb -j node.json.
//
// It is written to Chef's documented interface (the solo.rb settings
// cookbook_path, role_path, data_bag_path, environment_path, environment,
// encrypted_data_bag_secret and chef_license; chef-solo's -c and -j
// options) and tested up to the chef-solo invocation against a real sshd:
// Chef is in neither Debian's archive nor any registry reachable where it
// was written, so it has not been run against a real chef-solo.
//
// The package knows nothing of Starlark: the builtins layer decodes
// keyword arguments into Config.
package chef
