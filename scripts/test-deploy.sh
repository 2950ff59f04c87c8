#!/usr/bin/env bash
# test-deploy.sh: the Compose cluster (deploy/compose) end to end, on the
# image `make image` built (raftkms:$RAFTKMS_VERSION). Brings up 5 nodes in 3
# zones with TLS and automatic snapshots every 5 s, runs operator init, checks
# members (5 nodes, 3 zones, voters spread so that no zone holds a majority),
# encrypts through a node of every zone (and with n5's HSM key), then:
#   1. under steady Encrypt and CreateKey load from clients of the other
#      zones (e2e/zoneload), cuts the leader's whole zone off the backbone:
#      no Encrypt fails in the surviving zones, CreateKey is acknowledged
#      again through every surviving node within $WRITE_BUDGET (3 s), the
#      cut-off nodes refuse crypto after the staleness bound and catch up once
#      reconnected, and every acknowledged key is there;
#   2. the same load while the (new) leader's zone is killed (SIGKILL), then
#      started again: it catches up;
#   3. disaster: every node killed; a new cluster (fresh data dirs, the same
#      root key) restored from the newest automatic snapshot decrypts every
#      ciphertext made before.
# Tears everything down (volumes too) at the end.
#
# Needs docker, docker-compose, jq and ss; ports 127.0.0.1:19700-19740 free
# (or other ones in RAFTKMS_PORT_N1 ... RAFTKMS_PORT_N5).
set -euo pipefail
cd "$(dirname "$0")/.."

: "${RAFTKMS_VERSION:?set RAFTKMS_VERSION (make test-deploy does)}"
export RAFTKMS_VERSION
P=raftkms
COMPOSE=(docker-compose -p "$P" -f deploy/compose/docker-compose.yml -f .tmp/test-deploy/override.yml)
KMSCTL=${KMSCTL:-.tmp/image/rootfs/usr/local/bin/kmsctl} # static, from make image
WORK=.tmp/test-deploy
# Writes resume within this long of a zone cut or kill. With
# --raft-timeout=500ms a failover is a heartbeat timeout (0.5 s) plus its
# random extra (up to 0.5 s) plus an election (0.5 s, a second one after a
# split vote) plus the client's retry: 0.6–1.5 s measured on an idle host,
# 2.1 s once on a 2-vCPU host at load average 13.
WRITE_BUDGET=${WRITE_BUDGET:-3s}
ZONELOAD=${ZONELOAD:-.tmp/bin/zoneload}

declare -A ZONE_OF=([n1]=a [n2]=a [n3]=b [n4]=b [n5]=c)
# Published API ports: RAFTKMS_PORT_N1..N5 (the Compose file's defaults).
export RAFTKMS_PORT_N1=${RAFTKMS_PORT_N1:-19700} RAFTKMS_PORT_N2=${RAFTKMS_PORT_N2:-19710} RAFTKMS_PORT_N3=${RAFTKMS_PORT_N3:-19720} \
  RAFTKMS_PORT_N4=${RAFTKMS_PORT_N4:-19730} RAFTKMS_PORT_N5=${RAFTKMS_PORT_N5:-19740}
declare -A PORT_OF=([n1]=$RAFTKMS_PORT_N1 [n2]=$RAFTKMS_PORT_N2 [n3]=$RAFTKMS_PORT_N3 [n4]=$RAFTKMS_PORT_N4 [n5]=$RAFTKMS_PORT_N5)
declare -A IP_OF=([n1]=172.31.40.11 [n2]=172.31.40.12 [n3]=172.31.40.21 [n4]=172.31.40.22 [n5]=172.31.40.31)

log() { printf '%s test-deploy: %s\n' "$(date -u +%H:%M:%S)" "$*"; }
fail() { log "FAIL: $*"; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}'; }

cleanup() {
  rc=$?
  if [ $rc -ne 0 ]; then
    for n in n1 n2 n3 n4 n5; do
      log "last log lines of $n:"; docker logs --tail 15 "${P}_${n}_1" 2>&1 | sed 's/^/    /' || true
    done
  fi
  "${COMPOSE[@]}" down -v -t 10 --remove-orphans >/dev/null 2>&1 || true
  rm -rf "$WORK"
  log "torn down (exit $rc)"
}
trap cleanup EXIT

# ctl NODE ARGS...: kmsctl from the host through NODE's published API port.
ctl() {
  local n=$1; shift
  "$KMSCTL" --timeout 5s --ca-file "$WORK/ca.crt" --credentials "$WORK/creds.json" \
    --endpoint "https://127.0.0.1:${PORT_OF[$n]}" "$@"
}
# inctl NODE ARGS...: kmsctl inside NODE's container, against itself (a client
# in NODE's zone that still reaches it after the zone is cut off).
inctl() {
  local n=$1; shift
  docker exec -e KMS_ACCESS_KEY_ID="$AK" -e KMS_ACCESS_KEY_SECRET="$SK" "${P}_${n}_1" \
    /usr/local/bin/kmsctl --timeout 5s "$@"
}
# until_ok SECONDS CMD...: run CMD until it succeeds, at most SECONDS.
until_ok() {
  local limit=$1; shift
  local end=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$end" ] || return 1
    sleep 0.2
  done
}
encrypt() { ctl "$1" Encrypt --KeyId "$2" --Plaintext "$(printf 'zone test %s' "$1" | base64)" | jq -re .CiphertextBlob; }
healthy() { [ "$(docker inspect -f '{{.State.Health.Status}}' "${P}_$1_1")" = healthy ]; }

mkdir -p "$WORK"
# The test's only change to the deployment: an automatic snapshot every 5 s
# (kmsd refuses intervals under 1m unless its test variable allows them).
export RAFTKMS_SNAPSHOT_INTERVAL=5s
{
  echo 'version: "2.4"'
  echo 'services:'
  for n in n1 n2 n3 n4 n5; do
    printf '  %s:\n    environment:\n      KMSD_TEST_SNAPSHOT_MIN_INTERVAL: 1s\n' "$n"
  done
} > "$WORK/override.yml"
[ -x "$ZONELOAD" ] || fail "$ZONELOAD missing: make test-deploy builds it"
[ -x "$KMSCTL" ] || fail "$KMSCTL missing: run make image"
docker image inspect "raftkms:$RAFTKMS_VERSION" >/dev/null || fail "no image raftkms:$RAFTKMS_VERSION: run make image"
docker image inspect "raftkms:$RAFTKMS_VERSION-hsm" >/dev/null || fail "no image raftkms:$RAFTKMS_VERSION-hsm: run make image-hsm"

log "compose up (raftkms:$RAFTKMS_VERSION)"
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
for n in n1 n2 n3 n4 n5; do
  ! ss -Hltn "sport = :${PORT_OF[$n]}" 2>/dev/null | grep -q . || fail "port ${PORT_OF[$n]} (the published API port of $n) is in use: stop what listens there ($(ss -Hltnp "sport = :${PORT_OF[$n]}" 2>/dev/null | grep -o 'users:.*'))"
done
t0=$(now)
"${COMPOSE[@]}" up -d >/dev/null 2>&1 || { "${COMPOSE[@]}" up -d; fail "compose up"; }
for n in n1 n2 n3 n4 n5; do
  until_ok 90 healthy "$n" || fail "$n not healthy (HEALTHCHECK: kmsctl health) after 90 s"
done
log "5 nodes healthy after $(since "$t0") s"
[ "$(docker inspect -f '{{.Config.User}}' "${P}_n1_1")" = 65532:65532 ] || fail "nodes must run as 65532:65532"

docker cp "${P}_ca_1:/etc/raftkms/ca.crt" "$WORK/ca.crt"
"$KMSCTL" --ca-file "$WORK/ca.crt" --endpoint https://127.0.0.1:${PORT_OF[n3]} operator init --out "$WORK/creds.json" >/dev/null
AK=$(jq -r .AccessKeyId "$WORK/creds.json"); SK=$(jq -r .AccessKeySecret "$WORK/creds.json")
INSTANCE=$(jq -r .InstanceId "$WORK/creds.json")
log "operator init done"

# Members: 5 nodes, 3 zones, every node a voter here, and no zone with a
# majority of the voters (losing any one zone keeps a quorum).
until_ok 30 sh -c "'$KMSCTL' --ca-file '$WORK/ca.crt' --credentials '$WORK/creds.json' operator members > '$WORK/members.json'" || fail "operator members"
jq -e '[.Members[] | select(.Alive)] | length == 5' "$WORK/members.json" >/dev/null || fail "members: want 5 alive: $(cat "$WORK/members.json")"
jq -e '[.Members[].Zone] | unique == ["a","b","c"]' "$WORK/members.json" >/dev/null || fail "members: want zones a, b, c"
jq -e '[.Members[] | select(.Voter)] as $v | ($v | length) as $n
       | [$v | group_by(.Zone)[] | length] | (length == 3) and (max * 2 < $n)' "$WORK/members.json" >/dev/null \
  || fail "voters not spread across zones: $(jq -c '[.Members[] | {NodeId, Zone, Voter}]' "$WORK/members.json")"
log "members: $(jq -c '[.Members[] | "\(.NodeId)/\(.Zone)\(if .Voter then "/voter" else "" end)"]' "$WORK/members.json"), leader $(jq -r .Leader "$WORK/members.json")"

KEY=$(ctl n1 CreateKey --DKMSInstanceId "$INSTANCE" --Description "zone test" | jq -re .KeyMetadata.KeyId)
declare -A BLOBS
for n in n1 n3 n5; do
  BLOBS[$n]=$(encrypt "$n" "$KEY") || fail "Encrypt through $n (zone ${ZONE_OF[$n]})"
done
log "Encrypt answered through n1 (a), n3 (b), n5 (c)"

# n5's SoftHSM token serves the domain payments-hsm: a hardware instance's key
# lives in it, and a node of another zone takes the request.
until_ok 30 sh -c "'$KMSCTL' --ca-file '$WORK/ca.crt' --credentials '$WORK/creds.json' operator members | jq -e '.Members[] | select(.NodeId == \"n5\") | .HSM[0].Health == \"ok\"'" \
  || fail "n5's HSM token is not healthy in operator members"
HSM_INSTANCE=$(ctl n3 operator instance create --type hardware --hsm-domain payments-hsm | jq -re .InstanceId)
HKEY=$(ctl n3 CreateKey --DKMSInstanceId "$HSM_INSTANCE" --KeySpec Aliyun_AES_256 | jq -re .KeyMetadata.KeyId)
[ "$(ctl n1 DescribeKey --KeyId "$HKEY" | jq -r .KeyMetadata.ProtectionLevel)" = HSM ] || fail "the hardware key is not HSM-protected"
BLOBS[hsm]=$(encrypt n1 "$HKEY") || fail "Encrypt with the HSM key through n1"
log "n5's SoftHSM token serves payments-hsm: HSM key $HKEY encrypts through n1"

# Steady load from clients in the zones that stay up (e2e/zoneload: Encrypt
# and CreateKey through each of their nodes, every outcome recorded) while a
# zone holding the leader is killed, and later while one is cut off. The
# kill comes first: reconnecting a container to a Docker network leaves its
# peers' paths to it unsettled for a few seconds, which would blur what a
# following kill measures.
LOAD_INSTANCE=$(ctl n3 operator instance create --type software --name zone-load --key-quota 100000 | jq -re .InstanceId)
# load DIR NODE...: zoneload through NODEs' published ports, in the background.
load() {
  local dir=$1; shift
  local eps=()
  for n in "$@"; do eps+=("https://127.0.0.1:${PORT_OF[$n]}"); done
  mkdir -p "$dir"
  "$ZONELOAD" run --out "$dir" --credentials "$WORK/creds.json" --ca-file "$WORK/ca.crt" \
    --endpoints "$(IFS=,; echo "${eps[*]}")" --key "$KEY" --instance "$LOAD_INSTANCE" 2>"$dir/stderr" &
  LOAD_PID=$!
  until_ok 30 test -e "$dir/ready" || fail "zoneload never got both actions answered through $*: $(cat "$dir/stderr")"
}
# unload DIR SINCE LABEL: stop the load and check it (no Encrypt failed, writes
# resumed within WRITE_BUDGET of SINCE through every endpoint, every
# acknowledged key there).
unload() {
  kill -TERM "$LOAD_PID"; wait "$LOAD_PID" || fail "zoneload run failed: $(cat "$1/stderr")"
  "$ZONELOAD" check --out "$1" --since "$2" --label "$3" --write-budget "$WRITE_BUDGET" \
    --credentials "$WORK/creds.json" --ca-file "$WORK/ca.crt" --endpoint "https://127.0.0.1:${PORT_OF[${LIVE[0]}]}" \
    | sed 's/^/    /' || fail "under load, across the $3 (above)"
}


# Kill the leader's zone (SIGKILL, no leave) under load from the other
# zones, then start it again: it catches up.
until_ok 30 sh -c "'$KMSCTL' --ca-file '$WORK/ca.crt' --credentials '$WORK/creds.json' --endpoint https://127.0.0.1:${PORT_OF[n3]} operator members > '$WORK/members2.json'" || fail "operator members"
LEADER=$(jq -r .Leader "$WORK/members2.json")
KILLZ=${ZONE_OF[$LEADER]}
KILL=(); LIVE=()
for n in n1 n2 n3 n4 n5; do
  if [ "${ZONE_OF[$n]}" = "$KILLZ" ]; then KILL+=("$n"); else LIVE+=("$n"); fi
done
load "$WORK/load-kill" "${LIVE[@]}"
log "load running through ${LIVE[*]}; killing zone $KILLZ (${KILL[*]}); leader was $LEADER"
t=$(now)
for n in "${KILL[@]}"; do docker kill "${P}_${n}_1" >/dev/null; done
tkill=$(now)
echo "$tkill" > "$WORK/load-kill/since"
log "zone $KILLZ killed (docker kill took $(awk -v a="$t" -v b="$tkill" 'BEGIN{printf "%.2f", b-a}') s)"
until_ok 15 test -e "$WORK/load-kill/resumed" || fail "CreateKey did not resume through every surviving node within 15 s of the kill"
log "CreateKey acknowledged again through every surviving node $(since "$tkill") s after the kill"
unload "$WORK/load-kill" "$tkill" kill
KEY3=$(ctl "${LIVE[0]}" --show-index CreateKey --DKMSInstanceId "$INSTANCE" --Description after-kill 2>"$WORK/key3.index" | jq -re .KeyMetadata.KeyId)
KEY3_INDEX=$(sed -n 's/^X-Kms-Index: //p' "$WORK/key3.index")
[ -n "$KEY3_INDEX" ] || fail "CreateKey --show-index printed no index: $(cat "$WORK/key3.index")"
BLOBS[after-kill]=$(encrypt "${LIVE[0]}" "$KEY3") || fail "Encrypt with the key made after the kill"
for n in "${KILL[@]}"; do docker start "${P}_${n}_1" >/dev/null; done
for n in "${KILL[@]}"; do
  until_ok 90 healthy "$n" || fail "$n not healthy within 90 s of its restart"
  until_ok 60 inctl "$n" Encrypt --KeyId "$KEY3" --Plaintext aGk= || fail "$n did not catch up within 60 s of its restart"
done
log "zone $KILLZ back and caught up $(since "$tkill") s after the kill"

# Cut the leader's zone off under load: its nodes lose the backbone (their
# zone network stays, so a client inside the zone still reaches them).
until_ok 30 sh -c "'$KMSCTL' --ca-file '$WORK/ca.crt' --credentials '$WORK/creds.json' --endpoint https://127.0.0.1:${PORT_OF[n3]} operator members > '$WORK/members3.json'" || fail "operator members"
jq -e '[.Members[] | select(.Alive)] | length == 5' "$WORK/members3.json" >/dev/null || fail "members before the cut: want 5 alive: $(cat "$WORK/members3.json")"
LEADER=$(jq -r .Leader "$WORK/members3.json")
CUTZ=${CUT_ZONE:-${ZONE_OF[$LEADER]}}
CUT=(); LIVE=()
for n in n1 n2 n3 n4 n5; do
  if [ "${ZONE_OF[$n]}" = "$CUTZ" ]; then CUT+=("$n"); else LIVE+=("$n"); fi
done
load "$WORK/load-cut" "${LIVE[@]}"
log "load running through ${LIVE[*]}; cutting zone $CUTZ (${CUT[*]}) off the backbone; leader was $LEADER"
# The clock starts once the cut is complete: from then on no write can go
# through the old leader, so a CreateKey started later and acknowledged went
# through a new one.
t=$(now)
for n in "${CUT[@]}"; do docker network disconnect "${P}_backbone" "${P}_${n}_1"; done
tcut=$(now)
echo "$tcut" > "$WORK/load-cut/since"
log "zone $CUTZ cut off (disconnecting took $(awk -v a="$t" -v b="$tcut" 'BEGIN{printf "%.2f", b-a}') s)"
until_ok 15 test -e "$WORK/load-cut/resumed" || fail "CreateKey did not resume through every surviving node within 15 s of the cut"
log "CreateKey acknowledged again through every surviving node $(since "$tcut") s after the cut"

# The cut-off nodes refuse crypto once their catalogue is older than the
# staleness bound (--max-staleness, 5 s by default).
# refuses NODE: Encrypt inside NODE's zone is answered with the service's
# error (kmsctl exit 1 and the error JSON), not with a ciphertext. The node
# first tries once to catch up with a leader it cannot reach (dropped
# packets: a dial timeout), so the refusal is allowed 20 s.
refuses() {
  local rc=0 t
  t=$(now)
  inctl "$1" --timeout 20s Encrypt --KeyId "$KEY" --Plaintext aGk= >/dev/null 2>"$WORK/refusal-$1.json" || rc=$?
  REFUSAL_SECONDS=$(since "$t")
  [ "$rc" -eq 1 ] && grep -q '"Code"' "$WORK/refusal-$1.json"
}
for n in "${CUT[@]}"; do
  until_ok 30 refuses "$n" || fail "cut-off $n still serves Encrypt 30 s after the cut: $(cat "$WORK/refusal-$n.json")"
done
log "cut-off nodes (${CUT[*]}) refuse crypto $(since "$tcut") s after the cut (the last refusal took $REFUSAL_SECONDS s): $(jq -c '{Code, Message}' "$WORK/refusal-${CUT[0]}.json" 2>/dev/null || head -c 300 "$WORK/refusal-${CUT[0]}.json")"

# Reconnect: the cut-off nodes catch up (they know a key made during the cut).
KEY2=$(ctl "${LIVE[0]}" CreateKey --DKMSInstanceId "$INSTANCE" --Description after-cut | jq -re .KeyMetadata.KeyId)
for n in "${CUT[@]}"; do docker network connect --ip "${IP_OF[$n]}" "${P}_backbone" "${P}_${n}_1"; done
trec=$(now)
for n in "${CUT[@]}"; do
  until_ok 60 inctl "$n" Encrypt --KeyId "$KEY2" --Plaintext aGk= || fail "$n did not catch up within 60 s of reconnecting"
done
log "zone $CUTZ serves again $(since "$trec") s after reconnecting, with the key made during the cut"
unload "$WORK/load-cut" "$tcut" cut
log "zone cut under load: checked (budget $WRITE_BUDGET)"

# Every ciphertext made before the cut decrypts, through every node (the HSM
# key's once the other nodes see n5's token healthy again, if zone c was cut).
tdec=$(now)
for n in n1 n2 n3 n4 n5; do
  for z in "${!BLOBS[@]}"; do
    until_ok 40 ctl "$n" Decrypt --CiphertextBlob "${BLOBS[$z]}" || fail "Decrypt of $z's blob through $n"
  done
done
log "every ciphertext decrypts through every node ($(since "$tdec") s)"

# Audit logs are on the volumes and verify.
docker cp "${P}_n1_1:/audit/n1.log" "$WORK/n1-audit.log"
"$KMSCTL" operator audit verify "$WORK/n1-audit.log" >/dev/null || fail "n1's audit log does not verify"
# Disaster: every node is lost. The newest automatic snapshot (the leader
# writes one every $RAFTKMS_SNAPSHOT_INTERVAL into the volume backups) and the
# root key are all that is left: a new cluster, restored from it, decrypts
# what the old one encrypted.
SNAPDIR=$WORK/backups
mkdir -p "$SNAPDIR"
# The newest snapshot must hold what was made last (KEY3, written at
# KEY3_INDEX): files are named raftkms-<UTC time>-idx<index>.snap.
newest() {
  docker cp "${P}_${LIVE[0]}_1:/backups/." "$SNAPDIR/" >/dev/null 2>&1 || return 1
  SNAP=$(ls "$SNAPDIR"/raftkms-*.snap 2>/dev/null | sort | tail -1)
  [ -n "$SNAP" ] || return 1
  local idx=${SNAP##*-idx}; idx=${idx%.snap}
  [ "$idx" -ge "$KEY3_INDEX" ]
}
until_ok 60 newest || fail "no automatic snapshot at or past index $KEY3_INDEX in /backups within 60 s: $(ls "$SNAPDIR")"
log "disaster: killing every node; newest automatic snapshot $(basename "$SNAP") ($(stat -c %s "$SNAP") bytes)"
for n in n1 n2 n3 n4 n5; do docker kill "${P}_${n}_1" >/dev/null 2>&1 || true; done
docker cp "${P}_root-key_1:/etc/raftkms/root.key" "$WORK/root.key"
"$KMSCTL" operator snapshot verify "$SNAP" --root-key-file "$WORK/root.key" >/dev/null || fail "the automatic snapshot does not verify under the root key"
# A new cluster: new data dirs, the same keys and certificates (volume pki)
# and n5's HSM token.
"${COMPOSE[@]}" rm -f -s n1 n2 n3 n4 n5 >/dev/null 2>&1
for n in n1 n2 n3 n4 n5; do docker volume rm "${P}_data-$n" >/dev/null; done
trestore=$(now)
"${COMPOSE[@]}" up -d >/dev/null 2>&1 || fail "compose up of the new cluster"
for n in n1 n2 n3 n4 n5; do
  until_ok 90 healthy "$n" || fail "new $n not healthy after 90 s"
done
env -u KMS_CREDENTIALS "$KMSCTL" --timeout 60s --ca-file "$WORK/ca.crt" --endpoint https://127.0.0.1:${PORT_OF[n1]} \
  operator snapshot restore "$SNAP" >/dev/null || fail "restore of $(basename "$SNAP") into the new cluster"
for n in n1 n2 n3 n4 n5; do
  for z in "${!BLOBS[@]}"; do
    until_ok 40 ctl "$n" Decrypt --CiphertextBlob "${BLOBS[$z]}" || fail "after the restore: Decrypt of $z's blob through $n"
  done
done
log "disaster drill: new cluster up and restored from the newest automatic snapshot in $(since "$trestore") s; every ciphertext made before the disaster decrypts through every node"
log "PASS in $(since "$t0") s"
