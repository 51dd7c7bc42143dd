package ansible

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/imgbuild/imgbuild/drivers/ansible/adapter"
	"github.com/imgbuild/imgbuild/drivers/shellquote"
	"github.com/imgbuild/imgbuild/drivers/ssh"
	"github.com/imgbuild/imgbuild/engine"
)

// target is how ansible-playbook reaches the machine: inventory variables,
// environment, and what to stop afterwards.
type target struct {
	how   string // for messages: "through imgbuild's SSH adapter"
	vars  map[string]any
	env   map[string]string
	close func()
	stats func() string
}

// sshArgs are the OpenSSH options that make Ansible verify the host key
// in knownHosts, and nothing else.
func sshArgs(knownHosts string, more ...string) string {
	args := []string{
		"-o", "UserKnownHostsFile=" + shellquote.Quote(knownHosts),
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
	}
	return strings.Join(append(args, more...), " ")
}

// target sets up the way in: the adapter, or (use_proxy = False) the
// machine's own SSH server with the host key imgbuild verified and the
// keys it logged in with.
func (a *Ansible) target(ctx context.Context, env *engine.ProvisionEnv, scratch, short string) (*target, error) {
	if !a.cfg.UseProxy {
		return a.direct(ctx, env, scratch, short)
	}
	ad, err := adapter.Start(ctx, adapter.Options{Comm: env.Comm, TempDir: filepath.Join(scratch, "transit"), UI: env.UI})
	if err != nil {
		return nil, err
	}
	t := &target{
		how:   fmt.Sprintf("through imgbuild's SSH adapter on %s:%d", ad.Host(), ad.Port()),
		close: func() { ad.Close() },
		env:   map[string]string{"ANSIBLE_SSH_ARGS": "-o ControlMaster=auto -o ControlPersist=60s"},
		stats: func() string {
			s := ad.Stats()
			return fmt.Sprintf("the adapter carried %d commands, %d uploads, %d downloads and %d file operations", s.Commands, s.Uploads, s.Downloads, s.FileOps)
		},
	}
	key, err := writeFile(scratch, "adapter-key", ad.ClientKeyPEM())
	if err != nil {
		ad.Close()
		return nil, err
	}
	known, err := writeFile(scratch, "known_hosts", []byte(ad.KnownHostsLine()+"\n"))
	if err != nil {
		ad.Close()
		return nil, err
	}
	user, err := a.user(ctx, env.Comm)
	if err != nil {
		ad.Close()
		return nil, err
	}
	t.vars = map[string]any{
		"ansible_connection":           "ssh",
		"ansible_host":                 ad.Host(),
		"ansible_port":                 ad.Port(),
		"ansible_user":                 user,
		"ansible_ssh_private_key_file": key,
		"ansible_ssh_common_args":      sshArgs(known, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none"),
	}
	if pm, ok := env.Comm.(engine.PathMapper); ok {
		// A local() build: commands run on this machine in the build's
		// directory, and Ansible's temporary files must be inside it to
		// be uploaded there.
		root, err := pm.CommandPath("/")
		if err != nil {
			ad.Close()
			return nil, err
		}
		t.vars["imgbuild_root"] = root
		t.vars["ansible_remote_tmp"] = filepath.Join(root, ".imgbuild-ansible-tmp")
		inner := t.close
		t.close = func() {
			inner()
			os.RemoveAll(filepath.Join(root, ".imgbuild-ansible-tmp"))
		}
	}
	return t, nil
}

// user is ansible_user: the user keyword, else the user imgbuild reaches
// the machine as.
func (a *Ansible) user(ctx context.Context, comm engine.Communicator) (string, error) {
	if a.cfg.User != "" {
		return a.cfg.User, nil
	}
	if sc, ok := comm.(*ssh.Communicator); ok {
		return sc.Endpoint().Options.Username, nil
	}
	var out bytes.Buffer
	status, err := comm.Run(ctx, &engine.Command{Command: "id -un", Stdout: &out})
	if err != nil || status != 0 {
		return "", fmt.Errorf("asking the machine who its user is (id -un): status %d, %v; set user", status, err)
	}
	return strings.TrimSpace(out.String()), nil
}

// direct points ansible-playbook at the machine's own SSH server.
func (a *Ansible) direct(ctx context.Context, env *engine.ProvisionEnv, scratch, short string) (*target, error) {
	sc, ok := env.Comm.(*ssh.Communicator)
	if !ok {
		return nil, fmt.Errorf("use_proxy = False connects ansible-playbook straight to the machine's SSH server, but the %s builder does not reach its machine over SSH: leave use_proxy at True", env.Driver)
	}
	e := sc.Endpoint()
	o := e.Options
	if e.HostKey == nil {
		return nil, fmt.Errorf("use_proxy = False: imgbuild has no host key of %s to give Ansible", o.Addr())
	}
	if !e.Verified {
		env.UI.Warn("use_proxy = False with ssh_insecure_ignore_host_key = True: Ansible checks the host key %s presented to imgbuild (%s), which imgbuild did not verify", o.Addr(), gossh.FingerprintSHA256(e.HostKey))
	}
	lines := []string{knownhosts.Line([]string{knownhosts.Normalize(o.Addr())}, e.HostKey)}
	var more []string
	if o.BastionHost != "" {
		baddr := net.JoinHostPort(o.BastionHost, strconv.Itoa(o.BastionPort))
		if e.BastionHostKey == nil {
			return nil, fmt.Errorf("use_proxy = False: imgbuild has no host key of the bastion %s to give Ansible", baddr)
		}
		lines = append(lines, knownhosts.Line([]string{knownhosts.Normalize(baddr)}, e.BastionHostKey))
		buser := o.BastionUsername
		if buser == "" {
			buser = o.Username
		}
		more = append(more, "-o", "ProxyJump="+shellquote.Quote(buser+"@"+baddr))
	}
	known, err := writeFile(scratch, "known_hosts", []byte(strings.Join(lines, "\n")+"\n"))
	if err != nil {
		return nil, err
	}
	user := a.cfg.User
	if user == "" {
		user = o.Username
	}
	t := &target{
		how:   "straight to " + o.String() + " (use_proxy = False)",
		close: func() {},
		env:   map[string]string{},
		stats: func() string { return "no adapter" },
	}
	signers := append(append([]gossh.Signer(nil), e.Signers...), e.BastionSigners...)
	switch {
	case len(signers) > 0:
		sock, stop, err := ssh.ServeAgent(ctx, short, signers)
		if err != nil {
			return nil, fmt.Errorf("use_proxy = False: serving the login keys to Ansible: %w", err)
		}
		t.close = stop
		t.env["SSH_AUTH_SOCK"] = sock
	case o.AgentAuth:
		// The user's ssh-agent, through the inherited SSH_AUTH_SOCK.
	default:
		return nil, fmt.Errorf("use_proxy = False: imgbuild logs in to %s with ssh_password, which Ansible's ssh cannot be given without sshpass: use a key (ssh_private_key_file), or leave use_proxy at True", o.Addr())
	}
	t.vars = map[string]any{
		"ansible_connection":      "ssh",
		"ansible_host":            o.Host,
		"ansible_port":            o.Port,
		"ansible_user":            user,
		"ansible_ssh_common_args": sshArgs(known, more...),
	}
	return t, nil
}
