package stdlib_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/imgbuild/imgbuild/engine"
)

// testKey is an SSH public key for authorized_keys.
const testKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDydnY6MptmSx3oVZIJ9HLWgjO2QUpx0772yUeAIJ6cm alice@example"

// planLines loads src and returns the provisioners of its only build: the
// name each was given, then its line in the plan.
func planLines(t *testing.T, src string) []string {
	t.Helper()
	d, err := load(t, src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range d.Graph.Waves()[0][0].Provisioners {
		got = append(got, "name = "+strconv.Quote(o.Name)+" "+engine.MakePlan(d.Graph, registry(), d.Root).Builds[0].Provisioners[len(got)].Line)
	}
	return got
}

// TestModulesReturnNamedShellProvisioners: each function is one shell
// provisioner, named on the board after what it sets up, and sudo = True
// runs its whole script through sudo.
func TestModulesReturnNamedShellProvisioners(t *testing.T) {
	got := planLines(t, `
load("@stdlib//users.star", "user", "group", "sudoers", "authorized_keys")
load("@stdlib//sshd.star", "sshd_config")
load("@stdlib//cloud_init.star", "cloud_init", "cloud_init_clean")
load("@stdlib//time.star", "time_sync")
load("@stdlib//updates.star", "unattended_upgrades")
load("@stdlib//kernel.star", "sysctl", "kernel_modules")
local(name = "x", provisioners = [
    group("deploy", gid = 2000),
    user("alice", groups = ["deploy"], authorized_keys = ["`+testKey+`"], sudoer = "nopasswd"),
    sudoers("deploy", ["%deploy ALL=(root) NOPASSWD: /usr/bin/systemctl"]),
    authorized_keys("alice", ["`+testKey+`"], sudo = True),
    sshd_config(allow_groups = ["deploy"], options = {"ClientAliveInterval": 300}),
    cloud_init(datasources = ["Ec2", "None"]),
    cloud_init_clean(),
    time_sync(daemon = "systemd-timesyncd", servers = ["ntp.example.com"]),
    unattended_upgrades(origins = ["security", "updates"]),
    sysctl({"vm.swappiness": 10}),
    kernel_modules(blacklist = ["floppy"], options = {"kvm_intel": {"nested": True}}),
])
`)
	wants := [][]string{
		{`name = "group deploy"`, `groupadd -g 2000 'deploy'`},
		{`name = "user alice"`, `useradd -s '/bin/bash' -m -U 'alice'`, `usermod -a -G 'deploy' 'alice'`, `alice ALL=(ALL:ALL) NOPASSWD: ALL`, `visudo -cqf`, `alice@example`},
		{`name = "sudoers deploy"`, `%deploy ALL=(root) NOPASSWD: /usr/bin/systemctl`, `/etc/sudoers.d/deploy`},
		{`name = "authorized_keys alice"`, `inline = ["sudo -E sh -ec `, `chmod 0600`},
		{`name = "sshd_config"`, `PermitRootLogin prohibit-password`, `PasswordAuthentication no`, `AllowGroups deploy`, `ClientAliveInterval 300`, `Ciphers chacha20-poly1305@openssh.com,`, `sshd -t $keys`},
		{`name = "cloud_init"`, `{\"datasource_list\":[\"Ec2\",\"None\"]}`, `cloud-init clean --logs`},
		{`name = "cloud_init_clean"`, `cloud-init clean --logs`},
		{`name = "time_sync"`, `NTP=ntp.example.com`, `systemctl enable systemd-timesyncd.service`},
		{`name = "unattended_upgrades"`, `codename=${distro_codename}-security,label=Debian-Security`, `codename=${distro_codename}-updates`, `APT::Periodic::Unattended-Upgrade`},
		{`name = "sysctl 90-imgbuild"`, `vm.swappiness = 10`, `/etc/sysctl.d/90-imgbuild.conf`},
		{`name = "kernel_modules"`, `install floppy /bin/false`, `options kvm_intel nested=1`},
	}
	if len(got) != len(wants) {
		t.Fatalf("%d provisioners, want %d:\n%s", len(got), len(wants), strings.Join(got, "\n"))
	}
	for i, ws := range wants {
		if !strings.Contains(got[i], "\" shell(") {
			t.Errorf("provisioner %d is not a shell(): %s", i, got[i])
		}
		for _, w := range ws {
			if !strings.Contains(got[i], w) {
				t.Errorf("provisioner %d lacks %q:\n%s", i, w, got[i])
			}
		}
	}
	if strings.Contains(got[9], "kptr_restrict") {
		t.Error("sysctl without hardening wrote the hardening settings")
	}
}

func TestSysctlHardeningIsOverriddenBySettings(t *testing.T) {
	got := planLines(t, `
load("@stdlib//kernel.star", "sysctl")
local(name = "x", provisioners = [sysctl({"kernel.kptr_restrict": 1, "net.ipv4.ip_forward": True}, hardening = True, name = "60-router")])
`)
	for _, w := range []string{`kernel.kptr_restrict = 1\n`, `net.ipv4.ip_forward = 1\n`, `fs.protected_symlinks = 1\n`, `/etc/sysctl.d/60-router.conf`} {
		if !strings.Contains(got[0], w) {
			t.Errorf("lacks %q:\n%s", w, got[0])
		}
	}
	if strings.Contains(got[0], `kernel.kptr_restrict = 2`) {
		t.Errorf("the hardening value won over the setting:\n%s", got[0])
	}
}

// TestModulesRejectBadParameters: every bad parameter fails the
// description's evaluation, naming the function, the parameter and what
// it takes.
func TestModulesRejectBadParameters(t *testing.T) {
	cases := []struct{ module, call, want string }{
		{"users", `user("Alice")`, `user: name "Alice" is not a user or group name: lower case letters, digits, _ and -, starting with a letter or _`},
		{"users", `user("a" * 33)`, `is longer than 32 characters`},
		{"users", `user("alice", uid = -1)`, `user: uid must be a whole number from 0 to 4294967294, got -1`},
		{"users", `user("alice", groups = "sudo")`, `user: groups must be a list of strings, got "sudo"`},
		{"users", `user("alice", groups = ["sudo users"])`, `user: groups: "sudo users" is not a user or group name`},
		{"users", `user("alice", shell = "bash")`, `user: shell must be an absolute path such as "/bin/bash", got "bash"`},
		{"users", `user("alice", comment = "a:b")`, `user: shell, home and comment cannot hold ":"`},
		{"users", `user("alice", password_hash = "hunter2")`, `user: password_hash must be a crypt(3) hash such as "$y$j9T$..." (mkpasswd -m yescrypt), not a password`},
		{"users", `user("alice", authorized_keys = ["AAAA alice"])`, `user: authorized_keys: "AAAA alice" is not an SSH public key: a line such as "ssh-ed25519 AAAA... comment"`},
		{"users", `user("alice", authorized_keys = ["ssh-ed25519 AAAA\nssh-rsa BBBB"])`, `user: authorized_keys must be one line`},
		{"users", `user("alice", sudoer = "yes")`, `user: sudoer must be one of "", "nopasswd", "password", got "yes"`},
		{"users", `user("alice", sudo = "yes")`, `user alice: sudo must be True or False, got "yes"`},
		{"users", `group("deploy", system = 1)`, `group: system must be True or False, got 1`},
		{"users", `group("")`, `group: name is empty`},
		{"users", `sudoers("web.conf", ["x ALL=(ALL) ALL"])`, `sudoers: name "web.conf" is not a file name sudo reads from /etc/sudoers.d`},
		{"users", `sudoers("web", [])`, `sudoers: rules is empty`},
		{"users", `authorized_keys("alice", [])`, `authorized_keys: keys is empty`},
		{"sshd", `sshd_config(permit_root_login = "yes")`, `sshd_config: permit_root_login = "yes" lets root log in with a password: use "prohibit-password" (keys only) or "no"`},
		{"sshd", `sshd_config(permit_root_login = "without-pass")`, `sshd_config: permit_root_login must be one of "prohibit-password", "no", "forced-commands-only", got "without-pass"`},
		{"sshd", `sshd_config(port = 0)`, `sshd_config: port must be a whole number from 1 to 65535, got 0`},
		{"sshd", `sshd_config(ciphers = [])`, `sshd_config: ciphers is empty`},
		{"sshd", `sshd_config(macs = ["hmac-sha1,hmac-md5"])`, `sshd_config: macs: "hmac-sha1,hmac-md5" is not an algorithm name`},
		{"sshd", `sshd_config(options = {"Client Alive": "1"})`, `sshd_config: options: "Client Alive" is not an sshd_config keyword`},
		{"sshd", `sshd_config(options = {"Banner": "a\nb"})`, `sshd_config: options["Banner"] must be one line`},
		{"sshd", `sshd_config(allow_users = ["a b"])`, `sshd_config: allow_users: "a b" is not a user name or pattern`},
		{"cloud_init", `cloud_init(datasources = ["ec2"])`, `cloud_init: datasources: "ec2" is not a cloud-init datasource (did you mean "Ec2"?)`},
		{"cloud_init", `cloud_init(datasources = ["Nope"])`, `cloud_init: datasources: "Nope" is not a cloud-init datasource (known: AliYun,`},
		{"cloud_init", `cloud_init(datasources = ["None", "Ec2"])`, `cloud_init: datasources: "None" is the fallback and must come last`},
		{"cloud_init", `cloud_init(datasources = ["Ec2", "Ec2"])`, `cloud_init: datasources: a datasource is listed twice`},
		{"cloud_init", `cloud_init(datasources = [])`, `cloud_init: datasources is empty`},
		{"cloud_init", `cloud_init(config = {"datasource_list": ["Ec2"]})`, `cloud_init: config: set datasource_list with datasources = [...], not in config`},
		{"cloud_init", `cloud_init(config = [])`, `cloud_init: config must be a dict, got []`},
		{"cloud_init", `cloud_init_clean(seed = "yes")`, `cloud_init_clean: seed must be True or False`},
		{"time", `time_sync(daemon = "ntpd")`, `time_sync: daemon must be one of "chrony", "systemd-timesyncd", got "ntpd"`},
		{"time", `time_sync(servers = ["ntp.example.com; reboot"])`, `time_sync: servers: "ntp.example.com; reboot" is not a host name or address`},
		{"time", `time_sync(timezone = "../../etc/passwd")`, `time_sync: timezone "../../etc/passwd" is not a time zone name such as "Europe/Paris" or "Etc/UTC"`},
		{"updates", `unattended_upgrades(origins = ["securty"])`, `unattended_upgrades: origins: "securty" is neither a shortcut (security, stable, updates) nor an Origins-Pattern`},
		{"updates", `unattended_upgrades(origins = [])`, `unattended_upgrades: origins is empty`},
		{"updates", `unattended_upgrades(reboot_time = "2am")`, `unattended_upgrades: reboot_time must be "HH:MM" (such as "02:00") or "now", got "2am"`},
		{"updates", `unattended_upgrades(reboot_time = "24:00")`, `reboot_time must be "HH:MM"`},
		{"updates", `unattended_upgrades(mail = "ops")`, `unattended_upgrades: mail must be an address such as "ops@example.com", got "ops"`},
		{"kernel", `sysctl()`, `sysctl: no settings: give settings = {...} or hardening = True`},
		{"kernel", `sysctl({"net.ipv4.ip_forward = 1": 1})`, `sysctl: settings: "net.ipv4.ip_forward = 1" is not a sysctl parameter`},
		{"kernel", `sysctl({"../x": 1})`, `sysctl: settings: "../x" is not a sysctl parameter`},
		{"kernel", `sysctl({"vm.swappiness": "1\n2"})`, `sysctl: settings["vm.swappiness"] must be one line`},
		{"kernel", `sysctl({"vm.swappiness": 1}, name = "a/b")`, `sysctl: name "a/b" is not a file name (letters, digits, _ and -)`},
		{"kernel", `kernel_modules()`, `kernel_modules: nothing to do: give modules, blacklist or options`},
		{"kernel", `kernel_modules(modules = ["a b"])`, `kernel_modules: modules: "a b" is not a kernel module name`},
		{"kernel", `kernel_modules(modules = ["floppy"], blacklist = ["floppy"])`, `kernel_modules: "floppy" is both loaded and blacklisted`},
		{"kernel", `kernel_modules(options = {"kvm": "nested=1"})`, `kernel_modules: options["kvm"] must be a non-empty dict of parameter to value, like {"nested": 1}`},
		{"kernel", `kernel_modules(options = {"kvm": {"a-b": 1}})`, `kernel_modules: options["kvm"]: "a-b" is not a module parameter name`},
		{"kernel", `kernel_modules(options = {"kvm": {"x": "a b"}})`, `kernel_modules: options["kvm"]["x"]: a value cannot hold spaces`},
	}
	for _, c := range cases {
		src := "load(\"@stdlib//" + c.module + ".star\", " + quoteName(c.call) + ")\n" + c.call + "\n"
		_, err := load(t, src)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error = %v\nwant %s", c.call, err, c.want)
		}
	}
}

// quoteName is the function a call calls, quoted for load().
func quoteName(call string) string {
	name, _, _ := strings.Cut(call, "(")
	return `"` + name + `"`
}

// TestModuleProvisionersArePlacedAtTheCall: the plan and errors place a
// provisioner a module made at the line that called the module, not
// inside the standard library.
func TestModuleProvisionersArePlacedAtTheCall(t *testing.T) {
	d, err := load(t, `
load("@stdlib//kernel.star", "sysctl")
local(name = "x", provisioners = [
    sysctl({"vm.swappiness": 10}),
])
`)
	if err != nil {
		t.Fatal(err)
	}
	if pos := engine.MakePlan(d.Graph, registry(), d.Root).Builds[0].Provisioners[0].Pos; pos != "images.star:4:11" {
		t.Errorf("the provisioner is placed at %s, want images.star:4:11", pos)
	}
}
