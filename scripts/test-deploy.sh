#!/usr/bin/env bash
# test-deploy.sh: the Compose cluster (deploy/compose) end to end, on the
# image `make image` built (raftkms:$RAFTKMS_VERSION). Brings up 5 nodes in 3
# zones with TLS, runs operator init, checks members (5 nodes, 3 zones, voters
# spread so that no zone holds a majority), encrypts through a node of every
# zone, cuts the leader's whole zone off the backbone, and checks that the
# other zones keep encrypting, that CreateKey resumes, that the cut-off nodes
# refuse crypto after the staleness bound, and that they catch up once
# reconnected. Tears everything down (volumes too) at the end.
#
# Needs docker, docker-compose and jq; ports 127.0.0.1:19700-19740 free.
set -euo pipefail
cd "$(dirname "$0")/.."

: "${RAFTKMS_VERSION:?set RAFTKMS_VERSION (make test-deploy does)}"
export RAFTKMS_VERSION
P=raftkms
COMPOSE=(docker-compose -p "$P" -f deploy/compose/docker-compose.yml)
KMSCTL=${KMSCTL:-.tmp/image/rootfs/usr/local/bin/kmsctl} # static, from make image
WORK=.tmp/test-deploy
CUT_BUDGET=${CUT_BUDGET:-10} # seconds for writes to resume after the cut

declare -A ZONE_OF=([n1]=a [n2]=a [n3]=b [n4]=b [n5]=c)
declare -A PORT_OF=([n1]=19700 [n2]=19710 [n3]=19720 [n4]=19730 [n5]=19740)
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
[ -x "$KMSCTL" ] || fail "$KMSCTL missing: run make image"
docker image inspect "raftkms:$RAFTKMS_VERSION" >/dev/null || fail "no image raftkms:$RAFTKMS_VERSION: run make image"
docker image inspect "raftkms:$RAFTKMS_VERSION-hsm" >/dev/null || fail "no image raftkms:$RAFTKMS_VERSION-hsm: run make image-hsm"

log "compose up (raftkms:$RAFTKMS_VERSION)"
"${COMPOSE[@]}" down -v --remove-orphans >/dev/null 2>&1 || true
t0=$(now)
"${COMPOSE[@]}" up -d >/dev/null 2>&1 || { "${COMPOSE[@]}" up -d; fail "compose up"; }
for n in n1 n2 n3 n4 n5; do
  until_ok 90 healthy "$n" || fail "$n not healthy (HEALTHCHECK: kmsctl health) after 90 s"
done
log "5 nodes healthy after $(since "$t0") s"
[ "$(docker inspect -f '{{.Config.User}}' "${P}_n1_1")" = 65532:65532 ] || fail "nodes must run as 65532:65532"

docker cp "${P}_ca_1:/etc/raftkms/ca.crt" "$WORK/ca.crt"
"$KMSCTL" --ca-file "$WORK/ca.crt" --endpoint https://127.0.0.1:19720 operator init --out "$WORK/creds.json" >/dev/null
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

# Cut the leader's zone off: its nodes lose the backbone (their zone network
# stays, so a client inside the zone still reaches them).
LEADER=$(jq -r .Leader "$WORK/members.json")
CUTZ=${CUT_ZONE:-${ZONE_OF[$LEADER]}}
CUT=(); LIVE=()
for n in n1 n2 n3 n4 n5; do
  if [ "${ZONE_OF[$n]}" = "$CUTZ" ]; then CUT+=("$n"); else LIVE+=("$n"); fi
done
log "cutting zone $CUTZ (${CUT[*]}) off the backbone; leader was $LEADER"
tcut=$(now)
for n in "${CUT[@]}"; do docker network disconnect "${P}_backbone" "${P}_${n}_1"; done

for n in "${LIVE[@]}"; do
  until_ok "$CUT_BUDGET" encrypt "$n" "$KEY" || fail "Encrypt through $n (zone ${ZONE_OF[$n]}) within $CUT_BUDGET s of the cut"
done
log "Encrypt answers in the surviving zones $(since "$tcut") s after the cut"
until_ok "$CUT_BUDGET" sh -c "'$KMSCTL' --timeout 3s --ca-file '$WORK/ca.crt' --credentials '$WORK/creds.json' --endpoint https://127.0.0.1:${PORT_OF[${LIVE[0]}]} CreateKey --DKMSInstanceId $INSTANCE --Description after-cut > '$WORK/key2.json'" \
  || fail "CreateKey did not resume within $CUT_BUDGET s of the cut"
KEY2=$(jq -re .KeyMetadata.KeyId "$WORK/key2.json")
log "CreateKey resumed $(since "$tcut") s after the cut (new key $KEY2)"
for n in "${LIVE[@]}"; do encrypt "$n" "$KEY2" >/dev/null || fail "Encrypt with the new key through $n"; done

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

# Reconnect: the cut-off nodes catch up (they know the key made during the cut).
for n in "${CUT[@]}"; do docker network connect --ip "${IP_OF[$n]}" "${P}_backbone" "${P}_${n}_1"; done
trec=$(now)
for n in "${CUT[@]}"; do
  until_ok 60 inctl "$n" Encrypt --KeyId "$KEY2" --Plaintext aGk= || fail "$n did not catch up within 60 s of reconnecting"
done
log "zone $CUTZ serves again $(since "$trec") s after reconnecting, with the key made during the cut"

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
log "PASS in $(since "$t0") s"
