package chef

import (
	"testing"

	"github.com/imgbuild/imgbuild/drivers/provision"
)

// TestTheDefaultCommandsAreChefsDocumentedOnes: Packer's defaults, with
// the placeholders filled in.
func TestTheDefaultCommandsAreChefsDocumentedOnes(t *testing.T) {
	install, err := provision.ExpandPlaceholders(DefaultInstallCommand, map[string]string{"sudo": "sudo -n ", "version": " -v 18.2.7"})
	if err != nil || install != "curl -L https://omnitruck.chef.io/install.sh | sudo -n bash -s -- -v 18.2.7" {
		t.Errorf("install_command: %q, %v", install, err)
	}
	run, err := provision.ExpandPlaceholders(DefaultExecuteCommand, map[string]string{"sudo": "", "config": "/s/solo.rb", "json": "/s/node.json"})
	if err != nil || run != "chef-solo --no-color -c /s/solo.rb -j /s/node.json" {
		t.Errorf("execute_command: %q, %v", run, err)
	}
}

func TestSoloRBQuotesPathsAsRubyStrings(t *testing.T) {
	got := soloSettings{CookbookPaths: []string{`/a'b\c`}}.SoloRB()
	want := "# Written by imgbuild's chef_solo().\ncookbook_path ['/a\\'b\\\\c']\n"
	if got != want {
		t.Errorf("solo.rb %q, want %q", got, want)
	}
}
