#!/bin/sh
# image.sh VERSION: build the container image raftkms:VERSION (and
# raftkms:latest) from static binaries built here — FROM scratch, nothing
# pulled. The build context is only .tmp/image/rootfs and the Dockerfile.
set -eu
VERSION=${1:?usage: image.sh VERSION}
GO=${GO:-go}
ctx=.tmp/image
rm -rf "$ctx"
mkdir -p "$ctx/rootfs/usr/local/bin" "$ctx/rootfs/etc/raftkms" "$ctx/rootfs/data" "$ctx/rootfs/audit" "$ctx/rootfs/backups" "$ctx/rootfs/tmp"
chmod 0700 "$ctx/rootfs/data" "$ctx/rootfs/etc/raftkms" "$ctx/rootfs/audit" "$ctx/rootfs/backups"
chmod 1777 "$ctx/rootfs/tmp"
for b in kmsd kmsctl; do
  CGO_ENABLED=0 GOOS=linux $GO build -trimpath -ldflags "-s -w -X main.version=$VERSION" \
    -o "$ctx/rootfs/usr/local/bin/$b" "./cmd/$b"
done
printf 'root:x:0:0:root:/:/sbin/nologin\nkms:x:65532:65532:raftkms:/data:/sbin/nologin\n' > "$ctx/rootfs/etc/passwd"
printf 'root:x:0:\nkms:x:65532:\n' > "$ctx/rootfs/etc/group"
cp deploy/image/Dockerfile "$ctx/Dockerfile"
docker build --pull=false -t "raftkms:$VERSION" -t raftkms:latest "$ctx"
echo "raftkms:$VERSION: $(docker image inspect -f '{{.Size}}' "raftkms:$VERSION") bytes"
