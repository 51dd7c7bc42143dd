#!/usr/bin/env bash
# vagrant-up.sh BOX: boots a libvirt box that vagrant_box() made with
# Debian's vagrant and vagrant-libvirt, reaches it over SSH (vagrant ssh
# runs a command in it), destroys it, and prints the wall time of each
# part. It is `make vagrant-up` (BOX defaults to the quickstart's box, which
# `make demo` makes). Needs root.
#
# Everything runs in private network and mount namespaces that this script
# makes: its own libvirtd, whose state lives in a temporary directory, and
# vagrant-libvirt's management network (192.168.121.0/24, with libvirt's
# dnsmasq). These exist only in the namespace, so the guest and its
# addresses are never on the machine's network. Nothing stays behind: the
# libvirtd, dnsmasq and qemu processes end with the namespace, and the
# directory is removed.
#
# Measured once, on the 2-core machine under load 20 from other builds,
# with TCG (no vmx or svm flags), on the quickstart's 320 MB libvirt box:
# libvirtd up 13 s, vagrant box add 32 s, vagrant up --provider=libvirt
# 687 s (boot to SSH, key replaced), vagrant ssh 21 s, vagrant destroy 11 s;
# 776 s in all.
# That is far beyond the 3 minutes a CI test may take, so it is a make
# target.
set -euo pipefail

if [ "${1:-}" != "--inside" ]; then
  box=$(realpath "${1:?usage: vagrant-up.sh BOX}")
  [ -f "$box" ] || { echo "vagrant-up.sh: no box at $1: make one with vagrant_box() (make demo makes the quickstart's)" >&2; exit 2; }
  [ "$(id -u)" = 0 ] || { echo "vagrant-up.sh: needs root (it starts a libvirtd of its own)" >&2; exit 2; }
  for tool in vagrant libvirtd virsh dnsmasq qemu-system-x86_64 unshare; do
    command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || { echo "vagrant-up.sh: $tool is missing: apt-get install vagrant vagrant-libvirt libvirt-daemon-system dnsmasq-base qemu-system-x86" >&2; exit 2; }
  done
  work=$(mktemp -d /tmp/imgbuild-vagrant-up.XXXXXX)
  # unshare execs the script in this process: a signal to it reaches the
  # script, whose cleanup removes $work.
  exec unshare --net --mount --propagation private "$0" --inside "$box" "$work"
fi

box=$2 work=$3
PATH=$PATH:/usr/sbin
libvirtd_pid="" child=""
cleanup() {
  set +e
  [ -n "$child" ] && kill "$child" 2>/dev/null && wait "$child" 2>/dev/null
  if [ -n "$libvirtd_pid" ] && [ -d "$work/project/.vagrant" ]; then
    (cd "$work/project" && timeout 120 vagrant destroy -f >/dev/null 2>&1)
  fi
  if [ -n "$libvirtd_pid" ]; then
    for dom in $(virsh -q list --name 2>/dev/null); do virsh -q destroy "$dom" >/dev/null 2>&1; done
    kill "$libvirtd_pid" 2>/dev/null && wait "$libvirtd_pid" 2>/dev/null
  fi
  # What libvirtd started (qemu, dnsmasq) and left: their pid files are in
  # this namespace's /run, so they are this run's.
  for pidfile in /run/libvirt/qemu/*.pid /run/libvirt/network/*.pid; do
    [ -f "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null && while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
  done
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT HUP

# run runs a command in the background and waits for it, so that a signal
# interrupts the wait and the cleanup runs at once.
run() {
  "$@" &
  child=$!
  wait "$child"
  local status=$?
  child=""
  return $status
}

seconds() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(seconds)" 'BEGIN { printf "%.1f s", b - a }'; }
total=$(seconds)

ip link set lo up
# libvirt's configuration, copied so that nothing it defines persists, and
# its run, state, cache and log directories on tmpfs.
mkdir -p "$work/etc" "$work/pool" "$work/project" "$work/vagrant.d"
cp -a /etc/libvirt/. "$work/etc/"
rm -f "$work"/etc/qemu/networks/autostart/*
cat >> "$work/etc/qemu.conf" <<'EOF'
# vagrant-up.sh: qemu runs as root, unconfined, without cgroups (this
# machine has no systemd to place it), its console in a plain file.
user = "root"
group = "root"
security_driver = "none"
cgroup_controllers = [ ]
stdio_handler = "file"
EOF
mount --bind "$work/etc" /etc/libvirt
for d in /run /var/lib/libvirt /var/cache/libvirt /var/log/libvirt; do
  mkdir -p "$d"
  mount -t tmpfs tmpfs "$d"
done

start=$(seconds)
libvirtd --pid-file /run/libvirtd.pid >"$work/libvirtd.log" 2>&1 &
# (libvirtd stays in the background until the cleanup ends it.)
libvirtd_pid=$!
for _ in $(seq 1 300); do
  virsh -q version >/dev/null 2>&1 && break
  kill -0 "$libvirtd_pid" 2>/dev/null || { echo "libvirtd exited:" >&2; cat "$work/libvirtd.log" >&2; exit 1; }
  sleep 0.1
done
virsh -q version >/dev/null
echo "libvirtd up: $(since "$start")"

# KVM as qemu() decides it (drivers/qemu/accel.go): /dev/kvm opens and the
# CPU shows vmx or svm; a /dev/kvm without them fails in the guest (here:
# "failed to set MSR 0x10a"), so TCG then.
driver=qemu
if grep -qwE 'vmx|svm' /proc/cpuinfo && [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
  driver=kvm
fi

export VAGRANT_HOME=$work/vagrant.d VAGRANT_DEFAULT_PROVIDER=libvirt VAGRANT_CHECKPOINT_DISABLE=1
start=$(seconds)
run vagrant box add --name imgbuild-up "$box" >/dev/null
echo "vagrant box add: $(since "$start")"

cat > "$work/project/Vagrantfile" <<EOF
Vagrant.configure("2") do |config|
  config.vm.box = "imgbuild-up"
  config.vm.synced_folder ".", "/vagrant", disabled: true
  config.vm.boot_timeout = 900
  config.vm.provider :libvirt do |libvirt|
    libvirt.driver = "$driver"
    libvirt.storage_pool_path = "$work/pool"
  end
end
EOF
cd "$work/project"
start=$(seconds)
run vagrant up --provider=libvirt
echo "vagrant up --provider=libvirt ($driver): $(since "$start")"

start=$(seconds)
out=$(vagrant ssh -c 'echo "user $(id -un) on $(hostname)"; cat /etc/quickstart-release 2>/dev/null || true; echo "nginx $(systemctl is-active nginx 2>&1)"' 2>/dev/null)
echo "$out" | sed 's/^/  /'
echo "vagrant ssh: $(since "$start")"
case "$out" in *"user vagrant on "*) ;; *) echo "vagrant ssh did not reach the vagrant user" >&2; exit 1 ;; esac

start=$(seconds)
run vagrant destroy -f >/dev/null
echo "vagrant destroy: $(since "$start")"
echo "total: $(since "$total")"
