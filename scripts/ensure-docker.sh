#!/usr/bin/env bash
# ensure-docker.sh: make sure the Docker engine answers (make test-deploy
# needs it): start dockerd when it is installed but not running, and fail
# saying what is missing otherwise.
set -euo pipefail
if docker info >/dev/null 2>&1; then
  exit 0
fi
command -v dockerd >/dev/null || { echo "ensure-docker: no Docker engine (dockerd) on this machine; make test-deploy needs one" >&2; exit 1; }
command -v docker-compose >/dev/null || { echo "ensure-docker: docker-compose is missing; make test-deploy needs it" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; else SUDO=; fi
echo "ensure-docker: starting dockerd (log in /tmp/dockerd.log)"
$SUDO sh -c 'nohup dockerd >/tmp/dockerd.log 2>&1 &'
for _ in $(seq 1 60); do
  if docker info >/dev/null 2>&1; then exit 0; fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; its log:" >&2
tail -20 /tmp/dockerd.log >&2 || true
exit 1
