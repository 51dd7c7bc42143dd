package engine

import (
	"bytes"
	"context"
	"fmt"
	"strings"
)

// NoPackageManager is Report.PackageManager for a machine on which neither
// dpkg-query nor rpm was found: its packages could not be listed, which is
// recorded and is not an error.
const NoPackageManager = "none"

// packageListScript finds the machine's package manager and lists what it
// has installed, one package a line, after a header line naming the
// manager and one giving /etc/os-release's ID and VERSION_ID. A program
// of that name that does not answer --version (busybox's rpm applet) is
// not the package manager. dpkg's "${db:Status-Abbrev}" keeps only
// installed packages ("ii"), not those removed with their configuration
// left ("rc").
const packageListScript = `os=$( (. /etc/os-release && printf '%s\t%s' "$ID" "$VERSION_ID") 2>/dev/null)
if command -v dpkg-query >/dev/null 2>&1 && dpkg-query --version >/dev/null 2>&1; then
  printf 'manager\tdpkg\nos\t%s\n' "$os"
  exec dpkg-query -W -f='${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n'
elif command -v rpm >/dev/null 2>&1 && rpm --version >/dev/null 2>&1; then
  printf 'manager\trpm\nos\t%s\n' "$os"
  exec rpm -qa --queryformat 'ii \t%{NAME}\t%{VERSION}-%{RELEASE}\t%{ARCH}\t%{EPOCH}\n'
else
  printf 'manager\tnone\nos\t%s\n' "$os"
fi`

// ListPackages lists the packages installed on the machine comm reaches:
// with dpkg-query on Debian and Ubuntu, rpm -qa on RPM systems. On a
// machine with neither, the manager is NoPackageManager and there are no
// packages. distro is /etc/os-release's ID and VERSION_ID ("debian",
// "12"), empty when the machine has no such file.
func ListPackages(ctx context.Context, comm Communicator) (manager string, distro [2]string, pkgs []Package, err error) {
	var stdout, stderr bytes.Buffer
	status, err := comm.Run(ctx, &Command{Command: packageListScript, Stdout: &stdout, Stderr: &stderr})
	if err != nil {
		return "", distro, nil, fmt.Errorf("listing the installed packages: %w", err)
	}
	manager, distro, pkgs, perr := parsePackageList(stdout.String())
	if status != 0 || perr != nil {
		why := strings.TrimSpace(stderr.String())
		if perr != nil {
			why = perr.Error()
		}
		tool := "dpkg-query -W"
		if manager == "rpm" {
			tool = "rpm -qa"
		}
		return "", distro, nil, fmt.Errorf("listing the installed packages with %s failed (exit status %d): %s: check the machine's package database", tool, status, why)
	}
	return manager, distro, pkgs, nil
}

// parsePackageList reads packageListScript's output.
func parsePackageList(out string) (manager string, distro [2]string, pkgs []Package, err error) {
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(lines) < 2 || !strings.HasPrefix(lines[0], "manager\t") || !strings.HasPrefix(lines[1], "os\t") {
		return "", distro, nil, fmt.Errorf("unexpected output %q", firstLine(out))
	}
	manager = strings.TrimPrefix(lines[0], "manager\t")
	id, version, _ := strings.Cut(strings.TrimPrefix(lines[1], "os\t"), "\t")
	distro = [2]string{id, version}
	for _, l := range lines[2:] {
		f := strings.Split(l, "\t")
		if len(f) < 4 || f[1] == "" {
			return manager, distro, nil, fmt.Errorf("unexpected line %q", l)
		}
		if strings.TrimSpace(f[0]) != "ii" {
			continue // not installed (dpkg's "rc", "un", ...)
		}
		p := Package{Name: f[1], Version: f[2], Arch: f[3]}
		if len(f) > 4 && f[4] != "(none)" {
			p.Epoch = f[4]
		}
		pkgs = append(pkgs, p)
	}
	return manager, distro, pkgs, nil
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// listPackages records in the build's report what is installed on the
// machine comm reaches. A communicator whose commands run on this machine
// rather than in the image (a PathMapper: the local builder's) lists
// nothing: the packages would be this machine's.
func (j *Job) listPackages(ctx context.Context, comm Communicator) error {
	if _, ok := comm.(PathMapper); ok {
		j.UI.Say("packages: not listed: the communicator's commands run on this machine, whose packages are not the image's")
		return nil
	}
	manager, distro, pkgs, err := ListPackages(ctx, comm)
	if err != nil {
		return err
	}
	j.report.PackageManager, j.report.Packages = manager, pkgs
	j.report.Distro, j.report.DistroVersion = distro[0], distro[1]
	if manager == NoPackageManager {
		j.UI.Say("packages: no package manager found (neither dpkg-query nor rpm): none listed")
		return nil
	}
	j.UI.Say("packages: %d installed, listed with %s", len(pkgs), manager)
	return nil
}
