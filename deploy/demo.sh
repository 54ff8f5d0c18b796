#!/usr/bin/env bash
# Brings up a sample caselink network on loopback and shows it working:
#   Tong'an county (350212) - Xiamen city (350200) - Fujian province (350000)
#   - Sichuan province (510000), each a caselinkd with its own RocksDB, all
#   linked by mutual TLS with a freshly made development PKI. Each province
#   node publishes a signed directory of its nodes. Then Tong'an sends a
#   referral to Sichuan, sealed so that the relays cannot read it, and shows
#   the route it took and the signed receipt that came back; and runs the
#   same journey as a case, which Sichuan accepts and assigns, with Tong'an's
#   audit history of it verified against a signed tree head.
#
# Usage: deploy/demo.sh [up|stop]     (default: up)
# Environment: CASELINK_DEMO_PORT (first port, default 7401),
#              CASELINK_DEMO_DIR (work directory, default deploy/run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$here")
run=${CASELINK_DEMO_DIR:-$here/run}
base_port=${CASELINK_DEMO_PORT:-7401}
bin=$top/build/release

codes=(350212000000 350200000000 350000000000 510000000000)
names=("Tong'an County Justice Bureau" "Xiamen City Justice Bureau"
       "Fujian Provincial Department of Justice"
       "Sichuan Provincial Department of Justice")
# Links along the administrative tree, and Fujian with its partner Sichuan.
declare -A parents=(
  [350212000000]="350200000000"
  [350200000000]="350000000000"
  [350000000000]=""
  [510000000000]=""
)
declare -A links=(
  [350212000000]="350200000000"
  [350200000000]="350212000000 350000000000"
  [350000000000]="350200000000 510000000000"
  [510000000000]="350000000000"
)

port_of() {
  local i
  for i in "${!codes[@]}"; do
    [ "${codes[$i]}" = "$1" ] && echo $((base_port + i)) && return
  done
}

stop_nodes() {
  local pidfile
  for pidfile in "$run"/*.pid; do
    [ -e "$pidfile" ] || continue
    kill -TERM "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

if [ "${1:-up}" = "stop" ]; then
  stop_nodes
  echo "demo network stopped"
  exit 0
fi

# 1. Dependencies and build.
"$here/install-deps.sh"
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target caselinkd caselink

# 2. A fresh development PKI: one CA per province, a node certificate per
#    node and an operator certificate for each.
stop_nodes
rm -rf "$run"
mkdir -p "$run"
pki_args=()
for i in "${!codes[@]}"; do
  pki_args+=(--node "${codes[$i]}:${names[$i]}" --operator "${codes[$i]}:demo"
    --auditor "${codes[$i]}:audit")
done
"$top/certs/make-dev-pki.sh" --out "$run/pki" "${pki_args[@]}" >/dev/null

# 3. Each province's directory: its nodes, where they listen, how they
#    link, and their signing and sealing certificates.
for province in 350000000000 510000000000; do
  {
    echo "nodes:"
    for i in "${!codes[@]}"; do
      code=${codes[$i]}
      [ "${code:0:2}" = "${province:0:2}" ] || continue
      echo "  - code: \"$code\""
      echo "    name: \"${names[$i]}\""
      echo "    address: \"127.0.0.1:$(port_of "$code")\""
      [ -n "${parents[$code]}" ] && echo "    parent: \"${parents[$code]}\""
      if [ "$code" = 350000000000 ]; then echo "    links: [\"510000000000\"]"; fi
      if [ "$code" = 510000000000 ]; then echo "    links: [\"350000000000\"]"; fi
      echo "    signing_certificates: [\"$run/pki/nodes/$code/sign.crt\"]"
      echo "    sealing_certificate: \"$run/pki/nodes/$code/seal.crt\""
    done
  } >"$run/$province-directory.yaml"
done

# 4. One config, data directory and operator client config per node.
for i in "${!codes[@]}"; do
  code=${codes[$i]}
  node=$run/pki/nodes/$code
  {
    echo "node:"
    echo "  code: \"$code\""
    echo "  name: \"${names[$i]}\""
    echo "listen: \"127.0.0.1:$(port_of "$code")\""
    echo "data_dir: \"$run/data/$code\""
    echo "tls:"
    echo "  cert: \"$node/tls-chain.pem\""
    echo "  key: \"$node/tls.key\""
    echo "  ca_bundle: \"$run/pki/ca-bundle.pem\""
    echo "signing:"
    echo "  cert: \"$node/sign.crt\""
    echo "  key: \"$node/sign.key\""
    echo "sealing:"
    echo "  cert: \"$node/seal.crt\""
    echo "  key: \"$node/seal.key\""
    echo "directory:"
    echo "  refresh_seconds: 1"
    if [ "${code:2}" = 0000000000 ]; then
      echo "  publish: \"$run/$code-directory.yaml\""
    fi
    echo "audit:"
    echo "  head_interval_seconds: 5"
    echo "workflow:"
    echo "  lawyers:"
    echo "    - {id: L-01, name: \"Demo Lawyer One\", case_types: [unpaid_wages, work_injury]}"
    echo "    - {id: L-02, name: \"Demo Lawyer Two\", case_types: [labour_contract, social_insurance, other]}"
    echo "  minimum_living_allowance:"
    echo "    - {region: \"35\", yuan: \"900\"}"
    echo "    - {region: \"51\", yuan: \"800\"}"
    echo "peers:"
    for peer in ${links[$code]}; do
      echo "  - code: \"$peer\""
      echo "    address: \"127.0.0.1:$(port_of "$peer")\""
    done
  } >"$run/$code.yaml"
  client=$run/pki/clients/operator-$code-demo
  {
    echo "node:"
    echo "  code: \"$code\""
    echo "  address: \"127.0.0.1:$(port_of "$code")\""
    echo "tls:"
    echo "  cert: \"$client/client.crt\""
    echo "  key: \"$client/client.key\""
    echo "  ca_bundle: \"$run/pki/ca-bundle.pem\""
  } >"$run/$code-operator.yaml"
  auditor=$run/pki/clients/auditor-$code-audit
  sed -e "s|$client/|$auditor/|" "$run/$code-operator.yaml" \
    >"$run/$code-auditor.yaml"
done

# 5. Start the nodes.
for code in "${codes[@]}"; do
  "$bin/server/caselinkd" --config "$run/$code.yaml" >"$run/$code.log" 2>&1 &
  echo $! >"$run/$code.pid"
done

# 6. Wait until every link is up and every node holds both directories,
#    then show each node's view.
all_connected() {
  local code
  for code in "${codes[@]}"; do
    if "$bin/client/caselink" --config "$run/$code-operator.yaml" status \
        2>/dev/null | grep -Eq "  (connecting|unreachable) "; then
      return 1
    fi
    "$bin/client/caselink" --config "$run/$code-operator.yaml" --json status \
      2>/dev/null | grep -q '"510000000000":"1"' || return 1
    "$bin/client/caselink" --config "$run/$code-operator.yaml" --json status \
      2>/dev/null | grep -q '"350000000000":"1"' || return 1
  done
}
for _ in $(seq 100); do
  all_connected && break
  sleep 0.2
done

for code in "${codes[@]}"; do
  echo "\$ caselink --config $run/$code-operator.yaml status"
  "$bin/client/caselink" --config "$run/$code-operator.yaml" status
  echo
done
if all_connected; then
  echo "All four nodes are up, every link is connected and every node holds"
  echo "the signed directories of Fujian and Sichuan."
else
  echo "Some links are not connected; see the logs in $run/*.log" >&2
  exit 1
fi
echo

# 7. The main job: a referral from Tong'an to Sichuan, through Xiamen and
#    Fujian, sealed to Sichuan, and its signed receipt back.
cli() { "$bin/client/caselink" --config "$run/$1-operator.yaml" "${@:2}"; }
payload='{"case_type":"unpaid_wages","applicants":[{"name":"(sample)","id_number":"(sample)"}],"employer":"(sample)","amount_claimed":"38000"}'
echo "\$ caselink send --to 510000 --kind referral --case TA-2026-0001 --green --payload '...'"
id=$(cli 350212000000 send --to 510000 --kind referral --case TA-2026-0001 \
  --green --payload "$payload")
echo "$id"
echo
echo "\$ caselink sent --wait $id"
cli 350212000000 sent --wait "$id" --timeout 30
echo
echo "\$ caselink sent $id"
cli 350212000000 sent "$id"
echo
echo "\$ caselink inbox    # at Sichuan"
cli 510000000000 inbox
echo

# 8. The same journey as a case: Tong'an opens a group wage referral for
#    Sichuan, which receives it, accepts it and assigns a lawyer; Tong'an's
#    copy follows every step, and Tong'an's auditor reads the case's
#    history with proofs, verified against the node's signed tree head.
cat >"$run/referral.json" <<'JSON'
{
  "applicants": [
    {"name": "Sample Worker A", "idNumber": "510104199001011234",
     "phone": "13800000001", "homeRegion": "510104",
     "workplaceRegion": "350212", "incomePerHeadFen": "60000"},
    {"name": "Sample Worker B", "idNumber": "51010419920202123X",
     "phone": "13800000002", "homeRegion": "510104",
     "workplaceRegion": "350212", "incomePerHeadFen": "70000"}
  ],
  "caseType": "CASE_TYPE_UNPAID_WAGES",
  "employer": "Sample Construction Co.",
  "facts": "Wages for four months unpaid (sample data).",
  "amountClaimedFen": "7600000"
}
JSON
wait_state() {  # code case state
  for _ in $(seq 1 60); do
    if cli "$1" referral show "$2" 2>/dev/null | grep -q "state *$3"; then
      return 0
    fi
    sleep 0.5
  done
  echo "case $2 did not reach $3 at $1" >&2
  return 1
}
echo "\$ caselink referral create --to 510000 --file referral.json"
case_id=$(cli 350212000000 referral create --to 510000 --file "$run/referral.json")
echo "$case_id"
wait_state 510000000000 "$case_id" received
echo
echo "\$ caselink referral accept $case_id    # at Sichuan"
cli 510000000000 referral accept "$case_id"
echo "\$ caselink referral assign $case_id    # at Sichuan"
cli 510000000000 referral assign "$case_id"
wait_state 350212000000 "$case_id" assigned
echo
echo "\$ caselink referral show $case_id    # at Tong'an"
cli 350212000000 referral show "$case_id"
echo
echo "\$ caselink audit history $case_id    # Tong'an's auditor"
"$bin/client/caselink" --config "$run/350212000000-auditor.yaml" \
  audit history "$case_id"
echo
echo "Logs: $run/<code>.log.  Stop the network with: deploy/demo.sh stop"
