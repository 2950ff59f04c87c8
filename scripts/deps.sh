#!/usr/bin/env bash
# Installs the Debian packages raftkms's tests and tools use.
set -euo pipefail
pkgs=(jq curl iproute2 nftables softhsm2 opensc openssl python3)
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${pkgs[@]}"
