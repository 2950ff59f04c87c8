#!/bin/sh
# image-hsm.sh VERSION: build raftkms:VERSION-hsm, the HSM-capable variant —
# kmsd built with cgo (PKCS#11), SoftHSM2's module and softhsm2-util, and the
# shared libraries they load, copied from this (Debian bookworm) host into a
# FROM scratch image. Nothing is pulled. Needs softhsm2 installed (make deps).
set -eu
VERSION=${1:?usage: image-hsm.sh VERSION}
GO=${GO:-go}
MODULE=/usr/lib/softhsm/libsofthsm2.so
[ -r "$MODULE" ] || { echo "image-hsm: $MODULE missing: apt-get install softhsm2 (make deps)" >&2; exit 1; }
ctx=.tmp/image-hsm
rm -rf "$ctx"
r=$ctx/rootfs
mkdir -p "$r/usr/local/bin" "$r/usr/bin" "$r/usr/lib/softhsm" "$r/etc/softhsm" "$r/etc/raftkms" \
  "$r/etc/raftkms-hsm" "$r/data" "$r/audit" "$r/backups" "$r/var/lib/softhsm/tokens" "$r/tmp"
chmod 0700 "$r/data" "$r/etc/raftkms" "$r/etc/raftkms-hsm" "$r/audit" "$r/backups" "$r/var/lib/softhsm/tokens"
chmod 1777 "$r/tmp"
CGO_ENABLED=1 $GO build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$r/usr/local/bin/kmsd" ./cmd/kmsd
CGO_ENABLED=0 $GO build -trimpath -ldflags "-s -w -X main.version=$VERSION" -o "$r/usr/local/bin/kmsctl" ./cmd/kmsctl
# The module at Debian's paths (softhsm2-util loads the multiarch one).
real=$(readlink -f "$MODULE")
mkdir -p "$r$(dirname "$real")"
cp "$real" "$r$real"
[ "$real" = "$MODULE" ] || ln -s "$real" "$r$MODULE"
cp /usr/bin/softhsm2-util "$r/usr/bin/"
# The dynamic loader and every library the three need, at the same paths.
for f in "$r/usr/local/bin/kmsd" "$MODULE" /usr/bin/softhsm2-util; do
  ldd "$f" | awk '/=> \//{print $3} /^\t\/lib/{print $1}'
done | sort -u | while read -r lib; do
  mkdir -p "$r$(dirname "$lib")"
  cp -L "$lib" "$r$lib"
done
printf 'directories.tokendir = /var/lib/softhsm/tokens/\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' \
  > "$r/etc/softhsm/softhsm2.conf"
printf 'root:x:0:0:root:/:/sbin/nologin\nkms:x:65532:65532:raftkms:/data:/sbin/nologin\n' > "$r/etc/passwd"
printf 'root:x:0:\nkms:x:65532:\n' > "$r/etc/group"
sed -e 's|^# raftkms container image, software-only (no HSM)|# raftkms container image, HSM-capable (SoftHSM2; scripts/image-hsm.sh)|' \
  -e 's|^VOLUME \["/data", "/audit", "/backups"\]|VOLUME ["/data", "/audit", "/backups", "/var/lib/softhsm/tokens"]|' \
  deploy/image/Dockerfile > "$ctx/Dockerfile"
docker build --pull=false -t "raftkms:$VERSION-hsm" "$ctx"
echo "raftkms:$VERSION-hsm: $(docker image inspect -f '{{.Size}}' "raftkms:$VERSION-hsm") bytes"
