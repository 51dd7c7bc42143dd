#!/bin/sh
# make-iso.sh OUT_DIR: a bootable installer ISO from Debian's package
# debian-installer-12-netboot-amd64, which ships the netboot kernel and
# initrd (no mini.iso). ISOLINUX (Debian's isolinux and syslinux-common)
# waits at "boot:" for the command line that boot_command types, as the
# test ISOs of drivers/qemu do; xorriso makes the ISO. It writes
# OUT_DIR/debian-12-netboot.iso and OUT_DIR/SHA256SUMS (iso_checksum's
# file: list).
set -eu
out=${1:?usage: make-iso.sh OUT_DIR}
di=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
for f in "$di/linux" "$di/initrd.gz"; do
  [ -f "$f" ] || { echo "make-iso.sh: $f is missing: apt-get install debian-installer-12-netboot-amd64" >&2; exit 1; }
done
for f in /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32; do
  [ -f "$f" ] || { echo "make-iso.sh: $f is missing: apt-get install isolinux syslinux-common" >&2; exit 1; }
done
command -v xorriso >/dev/null || { echo "make-iso.sh: xorriso is missing: apt-get install xorriso" >&2; exit 1; }

mkdir -p "$out"
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/isolinux" "$tree/install.amd"
cp "$di/linux" "$tree/install.amd/vmlinuz"
cp "$di/initrd.gz" "$tree/install.amd/initrd.gz"
cp /usr/lib/ISOLINUX/isolinux.bin /usr/lib/syslinux/modules/bios/ldlinux.c32 "$tree/isolinux/"
# No SERIAL line: ISOLINUX echoing each typed key to the serial port is
# slow enough under TCG to overflow QEMU's keyboard queue.
cat > "$tree/isolinux/isolinux.cfg" <<'CFG'
PROMPT 1
TIMEOUT 0
DEFAULT install
LABEL install
  KERNEL /install.amd/vmlinuz
  APPEND initrd=/install.amd/initrd.gz
CFG
# The same bytes every run (the package's dates), so the checksum only
# changes with the package.
epoch=$(stat -c %Y "$di/linux")
find "$tree" -exec touch -h -d "@$epoch" {} +
if ! SOURCE_DATE_EPOCH=$epoch xorriso -as mkisofs -quiet \
  -o "$out/debian-12-netboot.iso" -R -J -V DEBIAN12NETBOOT \
  -b isolinux/isolinux.bin -c isolinux/boot.cat -no-emul-boot -boot-load-size 4 -boot-info-table \
  "$tree" 2> "$tree.log"; then
  echo "make-iso.sh: xorriso failed:" >&2; cat "$tree.log" >&2; rm -f "$tree.log"; exit 1
fi
rm -f "$tree.log"
(cd "$out" && sha256sum debian-12-netboot.iso > SHA256SUMS)
cat "$out/SHA256SUMS"
