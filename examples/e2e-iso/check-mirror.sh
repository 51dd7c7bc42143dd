#!/bin/sh
# check-mirror.sh [MIRROR]: tells, before an install of most of an hour,
# whether MIRROR (default http://deb.debian.org/debian) serves the
# installer components (udebs) that Debian's netboot installer downloads
# whatever the preseed says: the udebs of priority standard or higher in
# bookworm's debian-installer index (and apt-mirror-setup, which the
# mirror step asks for), less the kernel modules and those already in the
# netboot initrd. It asks for each with a HEAD request (about 30) and
# names those the mirror does not serve; it exits 1 if there is one, since
# the installer then stops at "[!!] Download installer components" and
# waits for an answer nobody gives.
set -eu
mirror=${1:-http://deb.debian.org/debian}
initrd=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64/initrd.gz
index=$mirror/dists/bookworm/main/debian-installer/binary-amd64/Packages.xz
for p in curl:curl xz:xz-utils bsdtar:libarchive-tools; do
  command -v "${p%%:*}" >/dev/null || { echo "check-mirror.sh: ${p%%:*} is missing: apt-get install ${p#*:}" >&2; exit 1; }
done
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if ! curl -fsS --max-time 60 "$index" | xz -d > "$tmp/index"; then
  echo "check-mirror.sh: cannot read the installer's package index $index (above: why)" >&2
  exit 1
fi
bsdtar -xOf "$initrd" var/lib/dpkg/status | awk '/^Package:/ { print $2 }' > "$tmp/in-initrd"
awk '/^Package:/ { p = $2 } /^Priority:/ { pr = $2 } /^Filename:/ { f = $2 }
  /^$/ { if (pr == "standard" || pr == "important" || pr == "required" || p == "apt-mirror-setup") print p, f; p = pr = f = "" }' "$tmp/index" |
  grep -v -e '-di ' | awk 'NR == FNR { have[$1] = 1; next } !($1 in have)' "$tmp/in-initrd" - > "$tmp/wanted"
missing=""
total=0
while read -r name file; do
  total=$((total + 1))
  code=$(curl -s -I -o /dev/null --max-time 30 -w '%{http_code}' "$mirror/$file" || true)
  [ "$code" = 200 ] || missing="$missing $name($code)"
done < "$tmp/wanted"
if [ -n "$missing" ]; then
  n=$(echo $missing | wc -w)
  echo "check-mirror.sh: $mirror does not serve $n of the $total installer components the netboot installer downloads (HTTP status in brackets):$missing" >&2
  echo "check-mirror.sh: the installer would stop at \"[!!] Download installer components\"; use a full Debian mirror (E2E_ISO_MIRROR_CHECK=0 boots it anyway)" >&2
  exit 1
fi
echo "check-mirror.sh: $mirror serves all $total installer components the netboot installer downloads"
