#!/bin/bash
# run.sh IMGBUILD: what make e2e-iso runs. It checks that the mirror
# serves the installer's components (check-mirror.sh; E2E_ISO_MIRROR_CHECK=0
# skips that), makes the installer ISO from
# debian-installer-12-netboot-amd64, runs examples/e2e-iso.star with
# timestamps (the time of each step is in the log), checks the box with
# vagrant box add in a VAGRANT_HOME of its own, and prints the wall time.
# The log is kept in examples/output/e2e-iso.log, the machine's serial
# console (the installer's screens and syslog lines) in
# examples/output/e2e-iso-console.log.
set -euo pipefail
bin=$(realpath "${1:?usage: run.sh IMGBUILD}")
here=$(cd "$(dirname "$0")" && pwd)
examples=$(dirname "$here")
log=$examples/output/e2e-iso.log
mkdir -p "$examples/output"

start=$(date +%s)
if [ "${E2E_ISO_MIRROR_CHECK:-1}" != 0 ]; then
  "$here/check-mirror.sh"
  echo "e2e-iso: mirror checked in $(( $(date +%s) - start ))s"
fi
"$here/make-iso.sh" "$here/build"
echo "e2e-iso: ISO made in $(( $(date +%s) - start ))s"

# The console is in the build's scratch directory, removed at its end:
# copy it as it grows.
(
  while sleep 5; do
    for f in "$examples"/.imgbuild/tmp/imgbuild-e2e-iso-*/console.log; do
      [ -f "$f" ] && cp "$f" "$examples/output/e2e-iso-console.log"
    done
  done
) &
copier=$!
trap 'kill $copier 2>/dev/null || true' EXIT

run_start=$(date +%s)
status=0
(cd "$examples" && nice "$bin" run e2e-iso.star --no-color --timestamps) 2>&1 | tee "$log" || status=$?
run_end=$(date +%s)
echo "e2e-iso: imgbuild run took $(( run_end - run_start ))s"
[ "$status" -eq 0 ] || { echo "e2e-iso: the build failed; see $log and $examples/output/e2e-iso-console.log" >&2; exit 1; }

box=$examples/output/e2e-iso/e2e-iso-libvirt.box
vh=$(mktemp -d)
VAGRANT_HOME=$vh vagrant box add --name imgbuild-e2e-iso --provider libvirt "$box"
VAGRANT_HOME=$vh vagrant box list
rm -rf "$vh"
echo "e2e-iso: $(ls -lh "$box" | awk '{print $5}') box, vagrant box add took it"
echo "e2e-iso: wall time $(( $(date +%s) - start ))s"
