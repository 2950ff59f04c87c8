#!/usr/bin/env bash
# Installs the Debian packages raftkms's tests and tools use.
set -euo pipefail
# chromium: the console tests (e2e/console_test.go) drive it headless with chromedp.
pkgs=(jq curl iproute2 nftables softhsm2 opensc openssl python3 chromium)
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${pkgs[@]}"
