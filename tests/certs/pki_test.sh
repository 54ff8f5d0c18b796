#!/usr/bin/env bash
# Tests certs/make-dev-pki.sh: runs it into temp dirs and inspects the result
# with openssl. Prints "N passed, 0 failed" on success; otherwise lists the
# failed checks and exits 1.
set -uo pipefail

# PKI_SCRIPT overrides the script under test, e.g. to try a modified copy.
REPO="$(cd "$(dirname "$0")/../.." && pwd)" || exit 1
readonly REPO
readonly SCRIPT="${PKI_SCRIPT:-$REPO/certs/make-dev-pki.sh}"
readonly FUJIAN=350000000000
readonly SICHUAN=510000000000

tmp="$(mktemp -d "${TMPDIR:-/tmp}/pki_test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT

passed=0
failures=()

# check DESCRIPTION COMMAND...: runs COMMAND quietly and records the outcome.
check() {
  local description="$1"
  shift
  if "$@" >"$tmp/check.out" 2>&1; then
    passed=$((passed + 1))
  else
    failures+=("$description")
    echo "FAIL: $description" >&2
    sed 's/^/    /' "$tmp/check.out" >&2
  fi
}

# check_fails DESCRIPTION COMMAND...: like check, but COMMAND must fail.
check_fails() {
  local description="$1"
  shift
  if "$@" >"$tmp/check.out" 2>&1; then
    failures+=("$description")
    echo "FAIL: $description (succeeded, expected failure)" >&2
  else
    passed=$((passed + 1))
  fi
}

# --- Small predicates, each usable as a check command. ---

# Runs the script, keeping its output in $tmp/last.out for later checks.
run_pki() {
  "$SCRIPT" "$@" >"$tmp/last.out" 2>&1
  local rc=$?
  cat "$tmp/last.out"
  return "$rc"
}

verifies() {  # CAFILE CERT [openssl verify options...]
  local cafile="$1" cert="$2"
  shift 2
  openssl verify -CAfile "$cafile" "$@" "$cert" | grep -qx "$cert: OK"
}

mode_is() {  # MODE FILE
  local actual
  actual="$(stat -c %a "$2")"
  [[ "$actual" == "$1" ]] || { echo "$2 has mode $actual, want $1"; return 1; }
}

subject_is() {  # CERT RFC2253-SUBJECT
  local actual
  actual="$(openssl x509 -in "$1" -noout -subject -nameopt RFC2253)"
  [[ "$actual" == "subject=$2" ]] || { echo "got '$actual'"; return 1; }
}

ext_has() {  # CERT EXTENSION TEXT: openssl's printout of EXTENSION has TEXT.
  local text
  text="$(openssl x509 -in "$1" -noout -ext "$2")" || return 1
  [[ "$text" == *"$3"* ]] || { echo "$2 is: $text"; return 1; }
}

key_text_has() {  # KEY TEXT
  openssl pkey -in "$1" -noout -text_pub | grep -qF -- "$2"
}

same_file() { cmp -s "$1" "$2"; }

sha256_of() { openssl dgst -sha256 -r "$1" | cut -d' ' -f1; }

hash_is() {  # FILE SHA256
  local actual
  actual="$(sha256_of "$1")"
  [[ "$actual" == "$2" ]] || { echo "$1: sha256 $actual, want $2"; return 1; }
}

cert_count_is() {  # PEM_FILE COUNT
  local actual
  actual="$(grep -c 'BEGIN CERTIFICATE' "$1")"
  [[ "$actual" == "$2" ]] || { echo "$1: $actual certs, want $2"; return 1; }
}

file_is() {  # FILE CONTENT
  local actual
  actual="$(cat "$1")"
  [[ "$actual" == "$2" ]] || { echo "got '$actual'"; return 1; }
}

output_has() { grep -qF -- "$1" "$tmp/last.out"; }

chain_is_cert_then_ca() {  # NODE_DIR CA_CERT
  cat "$1/tls.crt" "$2" | cmp -s - "$1/tls-chain.pem"
}

pubkey_of() { openssl x509 -in "$1" -noout -pubkey; }

cert_key_text_has() {  # CERT TEXT: the certificate's public key shows TEXT.
  pubkey_of "$1" | openssl pkey -pubin -noout -text_pub | grep -qF -- "$2"
}

keys_differ() {  # CERT1 CERT2: the two certificates hold different keys.
  local a b
  a="$(pubkey_of "$1")" && b="$(pubkey_of "$2")" &&
    [[ -n "$a" && "$a" != "$b" ]]
}

# A peer key per sealing key type, made once, for the ECDH round trips.
peer_key() {  # TYPE (p256 or x25519): prints the path of the peer key
  local path="$tmp/peer-$1.key"
  if [[ ! -f "$path" ]]; then
    case "$1" in
      p256) openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -out "$path" 2>/dev/null ;;
      x25519) openssl genpkey -algorithm X25519 -out "$path" 2>/dev/null ;;
    esac
  fi
  echo "$path"
}

# Uses the sealing pair: both sides of an ECDH exchange (P-256, X25519)
# reach the same secret, or SM2 encryption to seal.crt is undone by
# seal.key and not by sign.key.
seal_round_trip() {  # ALG NODE_DIR
  local alg="$1" dir="$2" peer
  pubkey_of "$dir/seal.crt" >"$tmp/seal.pub" || return 1
  case "$alg" in
    ecdsa-p256 | ed25519)
      if [[ "$alg" == ed25519 ]]; then
        peer="$(peer_key x25519)"
      else
        peer="$(peer_key p256)"
      fi
      openssl pkey -in "$peer" -pubout -out "$tmp/peer.pub" &&
        openssl pkeyutl -derive -inkey "$dir/seal.key" \
          -peerkey "$tmp/peer.pub" -out "$tmp/secret.node" &&
        openssl pkeyutl -derive -inkey "$peer" -peerkey "$tmp/seal.pub" \
          -out "$tmp/secret.peer" &&
        [[ -s "$tmp/secret.node" ]] && cmp "$tmp/secret.node" "$tmp/secret.peer"
      ;;
    sm2)
      printf 'case file for %s\n' "${dir##*/}" >"$tmp/plain"
      openssl pkeyutl -encrypt -pubin -inkey "$tmp/seal.pub" -in "$tmp/plain" \
        -out "$tmp/sealed" &&
        ! cmp -s "$tmp/plain" "$tmp/sealed" &&
        openssl pkeyutl -decrypt -inkey "$dir/seal.key" -in "$tmp/sealed" \
          -out "$tmp/opened" &&
        cmp "$tmp/plain" "$tmp/opened" &&
        ! openssl pkeyutl -decrypt -inkey "$dir/sign.key" -in "$tmp/sealed" \
          -out "$tmp/opened.wrong"
      ;;
  esac
}

# openssl verify with the CRLs of OUT_DIR must accept CERT.
crl_accepts() {  # OUT_DIR CERT
  openssl verify -crl_check -CAfile "$1/ca-bundle.pem" \
    -CRLfile "$1/crl-bundle.pem" "$2" | grep -qx "$2: OK"
}

# openssl verify with the CRLs of OUT_DIR must reject CERT as revoked.
crl_says_revoked() {  # OUT_DIR CERT
  local output
  if output="$(openssl verify -crl_check -CAfile "$1/ca-bundle.pem" \
    -CRLfile "$1/crl-bundle.pem" "$2" 2>&1)"; then
    echo "verify passed: $output"
    return 1
  fi
  [[ "$output" == *"certificate revoked"* ]] || { echo "$output"; return 1; }
}

crl_number_of() {  # CRL: prints its CRL number in decimal
  local line
  line="$(openssl crl -in "$1" -noout -crlnumber)" || return 1
  [[ "$line" == crlNumber=0x* ]] || return 1
  echo $((16#${line#crlNumber=0x}))
}

greater() {  # A B
  if [[ -z "$1" || -z "$2" ]] || (($1 <= $2)); then
    echo "'$1' is not > '$2'"
    return 1
  fi
}

# CRL is signed by CA_CERT, lists COUNT certificates, was issued just now
# and is valid for 30 days.
crl_is_current() {  # CRL CA_CERT COUNT
  local crl="$1" ca_cert="$2" count="$3" text now last next listed
  text="$(openssl crl -in "$crl" -CAfile "$ca_cert" -noout -text \
    -lastupdate -nextupdate 2>/dev/null)" || { echo "bad signature"; return 1; }
  now="$(date +%s)"
  last="$(date -d "$(sed -n 's/^lastUpdate=//p' <<<"$text")" +%s)" || return 1
  next="$(date -d "$(sed -n 's/^nextUpdate=//p' <<<"$text")" +%s)" || return 1
  ((last <= now + 60 && last > now - 3600)) ||
    { echo "lastUpdate $last, now $now"; return 1; }
  ((next - last == 30 * 86400)) || { echo "valid $((next - last))s"; return 1; }
  listed="$(grep -c 'Serial Number:' <<<"$text")"
  [[ "$listed" == "$count" ]] ||
    { echo "$listed revoked, want $count"; return 1; }
}

crl_count_is() {  # PEM_FILE COUNT
  local actual
  actual="$(grep -c 'BEGIN X509 CRL' "$1")"
  [[ "$actual" == "$2" ]] || { echo "$1: $actual CRLs, want $2"; return 1; }
}

crl_bundle_is_both() {  # OUT_DIR
  cat "$1/ca/$FUJIAN/crl.pem" "$1/ca/$SICHUAN/crl.pem" |
    cmp -s - "$1/crl-bundle.pem"
}

# Prints a line per file under DIR: its hash and path.
tree_snapshot() {  # DIR
  (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z |
    xargs -0 sha256sum)
}

tree_is() {  # DIR SNAPSHOT
  local now
  now="$(tree_snapshot "$1")"
  [[ "$now" == "$2" ]] || { diff <(echo "$2") <(echo "$now"); return 1; }
}

count_matching() {  # COUNT GLOB...: the glob matches COUNT files
  local want="$1"
  shift
  local files=() f
  for f in "$@"; do
    [[ -e "$f" ]] && files+=("$f")
  done
  [[ "${#files[@]}" == "$want" ]] ||
    { echo "${#files[@]} files, want $want: $*"; return 1; }
}

signature_checks_with() {  # CERT MESSAGE SIGNATURE (ECDSA P-256, SHA-256)
  pubkey_of "$1" >"$tmp/check.pub" &&
    openssl dgst -sha256 -verify "$tmp/check.pub" -signature "$3" "$2"
}

# Signs a message with the key, verifies with the certificate's public key,
# and checks a changed message is rejected.
signature_round_trip() {  # ALG NODE_DIR
  local alg="$1" dir="$2"
  printf 'referral 42 from %s\n' "${dir##*/}" >"$tmp/msg"
  printf 'referral 43 from %s\n' "${dir##*/}" >"$tmp/msg.changed"
  openssl x509 -in "$dir/sign.crt" -noout -pubkey >"$tmp/sign.pub" || return 1
  case "$alg" in
    ed25519)
      # Ed25519 signs the message itself: pkeyutl needs -rawin.
      openssl pkeyutl -sign -rawin -inkey "$dir/sign.key" -in "$tmp/msg" \
        -out "$tmp/sig" &&
        openssl pkeyutl -verify -rawin -pubin -inkey "$tmp/sign.pub" \
          -in "$tmp/msg" -sigfile "$tmp/sig" &&
        ! openssl pkeyutl -verify -rawin -pubin -inkey "$tmp/sign.pub" \
          -in "$tmp/msg.changed" -sigfile "$tmp/sig"
      ;;
    sm2)
      # SM2 with SM3 and the default distinguishing ID on both sides.
      openssl dgst -sm3 -sign "$dir/sign.key" -out "$tmp/sig" "$tmp/msg" &&
        openssl dgst -sm3 -verify "$tmp/sign.pub" -signature "$tmp/sig" \
          "$tmp/msg" &&
        ! openssl dgst -sm3 -verify "$tmp/sign.pub" -signature "$tmp/sig" \
          "$tmp/msg.changed"
      ;;
    ecdsa-p256)
      openssl dgst -sha256 -sign "$dir/sign.key" -out "$tmp/sig" "$tmp/msg" &&
        openssl dgst -sha256 -verify "$tmp/sign.pub" -signature "$tmp/sig" \
          "$tmp/msg" &&
        ! openssl dgst -sha256 -verify "$tmp/sign.pub" -signature "$tmp/sig" \
          "$tmp/msg.changed"
      ;;
  esac
}

# --- Checks on one output directory. ---

check_ca() {  # DIR PROVINCE12
  local ca="$1/ca/$2"
  check "ca $2: self-signed" verifies "$ca/ca.crt" "$ca/ca.crt"
  check "ca $2: subject" subject_is "$ca/ca.crt" \
    "CN=caselink dev root $2,OU=$2,O=caselink development"
  check "ca $2: CA:TRUE critical" ext_has "$ca/ca.crt" basicConstraints \
    $'critical\n    CA:TRUE'
  check "ca $2: keyUsage" ext_has "$ca/ca.crt" keyUsage \
    $'critical\n    Certificate Sign, CRL Sign'
  check "ca $2: P-256 key" key_text_has "$ca/ca.key" "ASN1 OID: prime256v1"
  check "ca $2: ca.key mode 600" mode_is 600 "$ca/ca.key"
}

check_node() {  # DIR CODE12 ALG NAME
  local out="$1" code="$2" alg="$3" name="$4"
  local dir="$out/nodes/$code" bundle="$out/ca-bundle.pem"
  local ca="$out/ca/${code:0:2}0000000000/ca.crt"

  # TLS certificate.
  check "node $code: tls.crt verifies against bundle" \
    verifies "$bundle" "$dir/tls.crt"
  check "node $code: tls.crt verifies against its province CA" \
    verifies "$ca" "$dir/tls.crt"
  check "node $code: tls.crt good for TLS server, name $code.node.caselink" \
    verifies "$bundle" "$dir/tls.crt" -purpose sslserver \
    -verify_hostname "$code.node.caselink"
  check "node $code: tls.crt good for TLS server at 127.0.0.1" \
    verifies "$bundle" "$dir/tls.crt" -purpose sslserver -verify_ip 127.0.0.1
  check "node $code: tls.crt good for TLS client" \
    verifies "$bundle" "$dir/tls.crt" -purpose sslclient
  check "node $code: tls.crt subject" subject_is "$dir/tls.crt" \
    "CN=$code,OU=node,O=caselink development"
  local san="DNS:$code.node.caselink, URI:urn:caselink:node:$code"
  san+=", IP Address:127.0.0.1, DNS:localhost"
  check "node $code: tls.crt SAN" ext_has "$dir/tls.crt" subjectAltName "$san"
  check "node $code: tls.crt keyUsage" ext_has "$dir/tls.crt" keyUsage \
    $'critical\n    Digital Signature'
  check "node $code: tls.key is P-256" \
    key_text_has "$dir/tls.key" "ASN1 OID: prime256v1"
  check "node $code: tls.key mode 600" mode_is 600 "$dir/tls.key"
  check "node $code: tls-chain.pem is tls.crt then CA" \
    chain_is_cert_then_ca "$dir" "$ca"

  # Signing certificate.
  local marker
  case "$alg" in
    ecdsa-p256) marker="ASN1 OID: prime256v1" ;;
    ed25519) marker="ED25519 Public-Key" ;;
    sm2) marker="ASN1 OID: SM2" ;;
  esac
  check "node $code: sign.key is $alg" key_text_has "$dir/sign.key" "$marker"
  check "node $code: sign.key mode 600" mode_is 600 "$dir/sign.key"
  check "node $code: sign.crt verifies against bundle" \
    verifies "$bundle" "$dir/sign.crt"
  check "node $code: sign.crt subject" subject_is "$dir/sign.crt" \
    "CN=$code,OU=signing,O=caselink development"
  check "node $code: sign.crt SAN" ext_has "$dir/sign.crt" subjectAltName \
    "URI:urn:caselink:node:$code"
  check "node $code: sign.crt keyUsage" ext_has "$dir/sign.crt" keyUsage \
    $'critical\n    Digital Signature, Non Repudiation'
  check "node $code: $alg signature verifies with sign.crt" \
    signature_round_trip "$alg" "$dir"

  # Sealing certificate: the key type follows --sign-alg.
  local seal_marker seal_usage
  case "$alg" in
    ecdsa-p256) seal_marker="ASN1 OID: prime256v1" ;;
    ed25519) seal_marker="X25519 Public-Key" ;;
    sm2) seal_marker="ASN1 OID: SM2" ;;
  esac
  if [[ "$alg" == sm2 ]]; then
    seal_usage=$'critical\n    Key Encipherment, Data Encipherment'
  else
    seal_usage=$'critical\n    Key Agreement'
  fi
  check "node $code: seal.key is ${seal_marker##* }" \
    key_text_has "$dir/seal.key" "$seal_marker"
  check "node $code: seal.crt holds a ${seal_marker##* } key" \
    cert_key_text_has "$dir/seal.crt" "$seal_marker"
  check "node $code: seal.key mode 600" mode_is 600 "$dir/seal.key"
  check "node $code: seal.crt mode 644" mode_is 644 "$dir/seal.crt"
  check "node $code: seal.crt verifies against bundle" \
    verifies "$bundle" "$dir/seal.crt"
  check "node $code: seal.crt verifies against its province CA" \
    verifies "$ca" "$dir/seal.crt"
  check "node $code: seal.crt subject" subject_is "$dir/seal.crt" \
    "CN=$code,OU=sealing,O=caselink development"
  check "node $code: seal.crt SAN" ext_has "$dir/seal.crt" subjectAltName \
    "URI:urn:caselink:node:$code"
  check "node $code: seal.crt keyUsage" ext_has "$dir/seal.crt" keyUsage \
    "$seal_usage"
  check "node $code: sealing and signing keys differ" \
    keys_differ "$dir/seal.crt" "$dir/sign.crt"
  local use
  case "$alg" in
    ecdsa-p256) use="ECDH P-256" ;;
    ed25519) use="X25519" ;;
    sm2) use="SM2 encryption" ;;
  esac
  check "node $code: seal.key and seal.crt work together ($use)" \
    seal_round_trip "$alg" "$dir"

  check "node $code: name" file_is "$dir/name" "$name"
}

check_client() {  # DIR ROLE CODE12 USER
  local out="$1" role="$2" code="$3" user="$4"
  local dir="$out/clients/$role-$code-$user"
  check "$role $user: verifies against bundle as TLS client" \
    verifies "$out/ca-bundle.pem" "$dir/client.crt" -purpose sslclient
  check_fails "$role $user: not usable as TLS server" \
    verifies "$out/ca-bundle.pem" "$dir/client.crt" -purpose sslserver
  check "$role $user: subject" subject_is "$dir/client.crt" \
    "CN=$user,OU=$role,O=caselink development"
  check "$role $user: SAN" ext_has "$dir/client.crt" subjectAltName \
    "URI:urn:caselink:$role:$code:$user"
  check "$role $user: client.key mode 600" mode_is 600 "$dir/client.key"
}

# --- Scenarios. ---

test_main_layout() {
  local out="$tmp/main"
  check "script succeeds for two provinces" run_pki --out "$out" \
    --node "350212:Tong'an" --node 3502 --node 35 --node 51 \
    --operator 350212:alice --auditor 350000:audra
  check "output names the node set made" \
    output_has "made node 350212000000 (tls, signing ecdsa-p256)"

  check_ca "$out" "$FUJIAN"
  check_ca "$out" "$SICHUAN"
  check "bundle holds both CAs" cert_count_is "$out/ca-bundle.pem" 2

  check_node "$out" 350212000000 ecdsa-p256 "Tong'an"
  check_node "$out" 350200000000 ecdsa-p256 "Node 350200000000"
  check_node "$out" 350000000000 ecdsa-p256 "Node 350000000000"
  check_node "$out" 510000000000 ecdsa-p256 "Node 510000000000"
  check_client "$out" operator 350212000000 alice
  check_client "$out" auditor 350000000000 audra

  check_fails "Sichuan node does not verify against the Fujian CA alone" \
    verifies "$out/ca/$FUJIAN/ca.crt" "$out/nodes/$SICHUAN/tls.crt"
  check_fails "Fujian node does not verify against the Sichuan CA alone" \
    verifies "$out/ca/$SICHUAN/ca.crt" "$out/nodes/350212000000/tls.crt"
}

test_rerun_keeps_ca() {
  local out="$tmp/main"
  local ca_before node_before
  ca_before="$(sha256_of "$out/ca/$FUJIAN/ca.crt")"
  node_before="$(sha256_of "$out/nodes/350212000000/tls.crt")"

  check "rerun adding a node succeeds" \
    run_pki --out "$out" --node 350203:Siming --node 350212
  check "rerun keeps the Fujian CA" \
    hash_is "$out/ca/$FUJIAN/ca.crt" "$ca_before"
  check "rerun keeps an existing node's tls.crt" \
    hash_is "$out/nodes/350212000000/tls.crt" "$node_before"
  check "rerun reports the kept node" output_has "kept node 350212000000"
  check "rerun keeps a name given earlier" \
    file_is "$out/nodes/350212000000/name" "Tong'an"
  check_node "$out" 350203000000 ecdsa-p256 Siming
  check "bundle still holds both CAs after rerun" \
    cert_count_is "$out/ca-bundle.pem" 2

  # Another --sign-alg replaces only the signing pair.
  check "rerun with --sign-alg ed25519 succeeds" \
    run_pki --out "$out" --node 350212 --sign-alg ed25519
  check "changed --sign-alg is reported" \
    output_has "made node 350212000000 (signing ed25519, was ecdsa-p256)"
  check_node "$out" 350212000000 ed25519 "Tong'an"
  check "changed --sign-alg keeps tls.crt" \
    hash_is "$out/nodes/350212000000/tls.crt" "$node_before"
  check "changed --sign-alg keeps the old signing cert as sign.prev-*" \
    count_matching 1 "$out"/nodes/350212000000/sign.prev-*.crt
  check "changed --sign-alg: sign.prev-* still verifies against the CA" \
    verifies "$out/ca/$FUJIAN/ca.crt" \
    "$(echo "$out"/nodes/350212000000/sign.prev-*.crt)"
  check "changed --sign-alg keeps the old sealing pair as seal.prev-*" \
    count_matching 1 "$out"/nodes/350212000000/seal.prev-*.key

  # --force starts over with new CAs.
  check "--force succeeds" run_pki --out "$out" --node 350212 --force
  check_fails "--force makes a new Fujian CA" \
    hash_is "$out/ca/$FUJIAN/ca.crt" "$ca_before"
  check "--force removes nodes not asked for again" \
    test ! -e "$out/nodes/$SICHUAN"
  check_node "$out" 350212000000 ecdsa-p256 "Node 350212000000"
}

test_sign_alg() {  # ALG
  local alg="$1" out="$tmp/$1"
  check "--sign-alg $alg succeeds" \
    run_pki --out "$out" --sign-alg "$alg" --node 350212 --node 51
  check "output names $alg" \
    output_has "made node 350212000000 (tls, signing $alg)"
  check_node "$out" 350212000000 "$alg" "Node 350212000000"
  check_node "$out" 510000000000 "$alg" "Node 510000000000"
  check_fails "$alg: Sichuan sign.crt does not verify against Fujian CA" \
    verifies "$out/ca/$FUJIAN/ca.crt" "$out/nodes/$SICHUAN/sign.crt"
  local snapshot
  snapshot="$(tree_snapshot "$out")"
  check "$alg: rerun succeeds" \
    run_pki --out "$out" --sign-alg "$alg" --node 350212 --node 51
  check "$alg: rerun keeps the node, sealing key included" \
    output_has "kept node 350212000000"
  check "$alg: rerun keeps every file" tree_is "$out" "$snapshot"
}

# Issues a CRL for the CA in CA_DIR that is valid for one day only, with an
# openssl ca config of the test's own.
short_lived_crl() {  # CA_DIR
  cat >"$tmp/short-crl.cnf" <<'EOF'
[ca]
default_ca = test_ca
[test_ca]
database = index.txt
certificate = ca.crt
private_key = ca.key
crlnumber = crlnumber
default_md = sha256
EOF
  (cd "$1" && openssl ca -batch -config "$tmp/short-crl.cnf" -gencrl \
    -crldays 1 -out crl.pem)
}

test_revocation() {
  local out="$tmp/rev" node="$tmp/rev/nodes/350212000000"
  local fujian_crl="$tmp/rev/ca/$FUJIAN/crl.pem"
  local sichuan_crl="$tmp/rev/ca/$SICHUAN/crl.pem"
  local make=(--out "$out" --node 350212 --node 350203 --node 51
    --operator 350212:alice --auditor 350000:audra)
  local n1 n2 n3 n4 snapshot tls_before sichuan_before
  check "revocation: first run succeeds" run_pki "${make[@]}"
  check "first run writes an empty Fujian CRL" \
    output_has "wrote crl for $FUJIAN (0 revoked)"
  check "first run reports the CRL bundle" \
    output_has "wrote crl-bundle.pem (2 CRLs)"
  check "Fujian CRL: signed by its CA, empty, valid 30 days" \
    crl_is_current "$fujian_crl" "$out/ca/$FUJIAN/ca.crt" 0
  check "Sichuan CRL: signed by its CA, empty, valid 30 days" \
    crl_is_current "$sichuan_crl" "$out/ca/$SICHUAN/ca.crt" 0
  check_fails "Fujian CRL is not signed by the Sichuan CA" \
    openssl crl -in "$fujian_crl" -CAfile "$out/ca/$SICHUAN/ca.crt" -noout
  check "crl.pem mode 644" mode_is 644 "$fujian_crl"
  check "crl-bundle.pem mode 644" mode_is 644 "$out/crl-bundle.pem"
  check "crl-bundle.pem holds 2 CRLs" crl_count_is "$out/crl-bundle.pem" 2
  check "crl-bundle.pem is the CRLs in bundle order" crl_bundle_is_both "$out"
  check "before revoking: node passes the CRL check" \
    crl_accepts "$out" "$node/tls.crt"
  check "before revoking: client passes the CRL check" \
    crl_accepts "$out" "$out/clients/operator-350212000000-alice/client.crt"

  snapshot="$(tree_snapshot "$out")"
  check "rerun without changes succeeds" run_pki "${make[@]}"
  check "rerun without changes keeps every file" tree_is "$out" "$snapshot"
  check "rerun reports the kept CRL" \
    output_has "kept crl for $FUJIAN (0 revoked)"

  n1="$(crl_number_of "$fujian_crl")"
  tls_before="$(sha256_of "$node/tls.crt")"
  sichuan_before="$(sha256_of "$sichuan_crl")"
  check "--revoke succeeds" run_pki --out "$out" --revoke 350212
  check "--revoke is reported" \
    output_has "revoked node 350212000000 (3 certificates)"
  check "--revoke rewrites the Fujian CRL" \
    output_has "wrote crl for $FUJIAN (3 revoked)"
  check "--revoke keeps the Sichuan CRL" \
    hash_is "$sichuan_crl" "$sichuan_before"
  check "Fujian CRL lists 3, signed, valid 30 days" \
    crl_is_current "$fujian_crl" "$out/ca/$FUJIAN/ca.crt" 3
  n2="$(crl_number_of "$fujian_crl")"
  check "CRL number grows on --revoke" greater "$n2" "$n1"
  check "crl-bundle.pem is rebuilt" crl_bundle_is_both "$out"
  local set
  for set in tls sign seal; do
    check "revoked node's $set.crt fails the CRL check: certificate revoked" \
      crl_says_revoked "$out" "$node/$set.crt"
  done
  check "revoked node's tls.crt still verifies without CRLs" \
    verifies "$out/ca-bundle.pem" "$node/tls.crt"
  check "revoked files stay in place" hash_is "$node/tls.crt" "$tls_before"
  check "another Fujian node passes the CRL check" \
    crl_accepts "$out" "$out/nodes/350203000000/tls.crt"
  check "a Sichuan node passes the CRL check" \
    crl_accepts "$out" "$out/nodes/$SICHUAN/seal.crt"
  check "index.txt lists 3 revoked" \
    test "$(grep -c '^R' "$out/ca/$FUJIAN/index.txt")" = 3

  snapshot="$(tree_snapshot "$out")"
  check "repeated --revoke succeeds" run_pki --out "$out" --revoke 350212
  check "repeated --revoke says already revoked" \
    output_has "node 350212000000 already revoked (3 certificates)"
  check "repeated --revoke changes nothing" tree_is "$out" "$snapshot"
  check "plain rerun after --revoke succeeds" run_pki "${make[@]}"
  check "plain rerun keeps the revoked node, saying so" \
    output_has "kept node 350212000000 (revoked"
  check "plain rerun after --revoke changes nothing" tree_is "$out" "$snapshot"

  check "--revoke-client succeeds" \
    run_pki --out "$out" --revoke-client operator:350212:alice
  check "--revoke-client is reported" \
    output_has "revoked operator 350212000000:alice (1 certificate)"
  check "--revoke-client rewrites the CRL" \
    output_has "wrote crl for $FUJIAN (4 revoked)"
  check "revoked client fails the CRL check" crl_says_revoked "$out" \
    "$out/clients/operator-350212000000-alice/client.crt"
  check "other client passes the CRL check" \
    crl_accepts "$out" "$out/clients/auditor-350000000000-audra/client.crt"
  n3="$(crl_number_of "$fujian_crl")"
  check "CRL number grows on --revoke-client" greater "$n3" "$n2"

  check "--node --rotate after --revoke succeeds" \
    run_pki --out "$out" --node 350212 --rotate
  check "rotation is reported" \
    output_has "rotated node 350212000000 (signing ecdsa-p256)"
  for set in tls sign seal; do
    check "rotated node's new $set.crt passes the CRL check" \
      crl_accepts "$out" "$node/$set.crt"
  done
  check "the revoked signing cert is kept as sign.prev-*" \
    count_matching 1 "$node"/sign.prev-*.crt
  check "the kept revoked signing cert fails the CRL check" \
    crl_says_revoked "$out" "$(echo "$node"/sign.prev-*.crt)"
  check "rotation alone keeps the CRL" \
    output_has "kept crl for $FUJIAN (4 revoked)"

  # A CRL that does not fit its CA, or runs out soon, is issued again.
  cp "$sichuan_crl" "$fujian_crl"
  check "rerun with a foreign crl.pem succeeds" run_pki --out "$out" --node 51
  check "foreign crl.pem is replaced" \
    crl_is_current "$fujian_crl" "$out/ca/$FUJIAN/ca.crt" 4
  n4="$(crl_number_of "$fujian_crl")"
  check "CRL number grows on replacing a foreign CRL" greater "$n4" "$n3"
  check "short-lived CRL made for the test" short_lived_crl "$out/ca/$FUJIAN"
  n4="$(crl_number_of "$fujian_crl")"
  check "rerun with a CRL about to expire succeeds" \
    run_pki --out "$out" --node 51
  check "CRL about to expire is renewed for 30 days" \
    crl_is_current "$fujian_crl" "$out/ca/$FUJIAN/ca.crt" 4
  check "CRL number grows on renewal" \
    greater "$(crl_number_of "$fujian_crl")" "$n4"
  n4="$(crl_number_of "$fujian_crl")"
  rm -f "$out/ca/$FUJIAN/crlnumber"
  check "--revoke with crlnumber lost succeeds" \
    run_pki --out "$out" --revoke 350203
  check "CRL number grows even with crlnumber lost" \
    greater "$(crl_number_of "$fujian_crl")" "$n4"
  check "--revoke of a second node lists 7" \
    crl_is_current "$fujian_crl" "$out/ca/$FUJIAN/ca.crt" 7
  check "first revoked node's rotated certs still pass" \
    crl_accepts "$out" "$node/tls.crt"
}

test_rotation() {
  local out="$tmp/rot" dir="$tmp/rot/nodes/350212000000"
  local ca="$tmp/rot/ca/$FUJIAN/ca.crt" serial seal_serial snapshot sichuan
  check "rotation: first run succeeds" \
    run_pki --out "$out" --node 350212 --node 51
  cp "$dir/sign.crt" "$tmp/old-sign.crt"
  cp "$dir/sign.key" "$tmp/old-sign.key"
  cp "$dir/tls.crt" "$tmp/old-tls.crt"
  cp "$dir/seal.crt" "$tmp/old-seal.crt"
  cp "$dir/seal.key" "$tmp/old-seal.key"
  seal_serial="$(openssl x509 -in "$dir/seal.crt" -noout -serial)"
  seal_serial="${seal_serial#serial=}"
  printf 'referral 7\n' >"$tmp/old-msg"
  openssl dgst -sha256 -sign "$dir/sign.key" -out "$tmp/old-sig" \
    "$tmp/old-msg"
  serial="$(openssl x509 -in "$dir/sign.crt" -noout -serial)"
  serial="${serial#serial=}"
  sichuan="$(tree_snapshot "$out/nodes/$SICHUAN")"

  check "--rotate CODE succeeds" run_pki --out "$out" --rotate 350212
  check "--rotate is reported" \
    output_has "rotated node 350212000000 (signing ecdsa-p256)"
  check "--rotate: new sign.crt has another key" \
    keys_differ "$dir/sign.crt" "$tmp/old-sign.crt"
  check "--rotate: new tls.crt has another key" \
    keys_differ "$dir/tls.crt" "$tmp/old-tls.crt"
  check "--rotate: new seal.crt has another key" \
    keys_differ "$dir/seal.crt" "$tmp/old-seal.crt"
  check "--rotate keeps the old cert as sign.prev-<serial>.crt" \
    same_file "$tmp/old-sign.crt" "$dir/sign.prev-$serial.crt"
  check "--rotate keeps the old key as sign.prev-<serial>.key" \
    same_file "$tmp/old-sign.key" "$dir/sign.prev-$serial.key"
  check "sign.prev key mode 600" mode_is 600 "$dir/sign.prev-$serial.key"
  check "sign.prev cert mode 644" mode_is 644 "$dir/sign.prev-$serial.crt"
  check "--rotate keeps the old sealing cert as seal.prev-<serial>.crt" \
    same_file "$tmp/old-seal.crt" "$dir/seal.prev-$seal_serial.crt"
  check "--rotate keeps the old sealing key as seal.prev-<serial>.key" \
    same_file "$tmp/old-seal.key" "$dir/seal.prev-$seal_serial.key"
  check "seal.prev key mode 600" mode_is 600 "$dir/seal.prev-$seal_serial.key"
  check "seal.prev cert mode 644" \
    mode_is 644 "$dir/seal.prev-$seal_serial.crt"
  check "sign.prev cert still verifies against the CA" \
    verifies "$ca" "$dir/sign.prev-$serial.crt"
  check "sign.prev cert still verifies against the bundle" \
    verifies "$out/ca-bundle.pem" "$dir/sign.prev-$serial.crt"
  check "what the old key signed verifies with sign.prev cert" \
    signature_checks_with "$dir/sign.prev-$serial.crt" "$tmp/old-msg" \
    "$tmp/old-sig"
  check_fails "what the old key signed does not verify with new sign.crt" \
    signature_checks_with "$dir/sign.crt" "$tmp/old-msg" "$tmp/old-sig"
  check "--rotate without --revoke revokes nothing" \
    output_has "kept crl for $FUJIAN (0 revoked)"
  check "old signing cert passes the CRL check" \
    crl_accepts "$out" "$dir/sign.prev-$serial.crt"
  check "--rotate leaves other nodes alone" \
    tree_is "$out/nodes/$SICHUAN" "$sichuan"
  check_node "$out" 350212000000 ecdsa-p256 "Node 350212000000"

  snapshot="$(tree_snapshot "$out")"
  check "rerun after --rotate succeeds" \
    run_pki --out "$out" --node 350212 --node 51
  check "rerun after --rotate keeps every file" tree_is "$out" "$snapshot"

  check "--rotate with another --sign-alg succeeds" \
    run_pki --out "$out" --rotate 350212 --sign-alg ed25519
  check "--rotate names old and new algorithm" \
    output_has "rotated node 350212000000 (signing ed25519, was ecdsa-p256)"
  check "two rotations keep two sign.prev certs" \
    count_matching 2 "$dir"/sign.prev-*.crt
  check "two rotations keep two sign.prev keys" \
    count_matching 2 "$dir"/sign.prev-*.key
  check "two rotations keep two seal.prev keys" \
    count_matching 2 "$dir"/seal.prev-*.key
  check "rotated to ed25519: sign.key is Ed25519" \
    key_text_has "$dir/sign.key" "ED25519 Public-Key"
  check "rotated to ed25519: seal.crt holds an X25519 key" \
    cert_key_text_has "$dir/seal.crt" "X25519 Public-Key"
  check "rotated to ed25519: seal.crt verifies against the CA" \
    verifies "$ca" "$dir/seal.crt"

  # Revoke and rotate in one run: the old certificates are revoked first.
  cp "$dir/tls.crt" "$tmp/old-tls.crt"
  serial="$(openssl x509 -in "$dir/sign.crt" -noout -serial)"
  serial="${serial#serial=}"
  check "--revoke and --rotate together succeed" \
    run_pki --out "$out" --revoke 350212 --rotate 350212 --sign-alg ed25519
  check "--revoke with --rotate reports the revocation" \
    output_has "revoked node 350212000000 (3 certificates)"
  check "--revoke with --rotate reports the rotation" \
    output_has "rotated node 350212000000 (signing ed25519)"
  check "the old tls.crt is revoked" crl_says_revoked "$out" "$tmp/old-tls.crt"
  check "the old signing cert, kept, is revoked" \
    crl_says_revoked "$out" "$dir/sign.prev-$serial.crt"
  check "the new tls.crt passes" crl_accepts "$out" "$dir/tls.crt"
  check "the new sign.crt passes" crl_accepts "$out" "$dir/sign.crt"
  check "the new seal.crt passes" crl_accepts "$out" "$dir/seal.crt"

  check "bare --rotate rotates the --node codes" \
    run_pki --out "$out" --node 51 --rotate
  check "bare --rotate is reported" \
    output_has "rotated node 510000000000 (signing ecdsa-p256)"
  check "bare --rotate keeps the old Sichuan signing cert" \
    count_matching 1 "$out/nodes/$SICHUAN"/sign.prev-*.crt
}

# A directory made before sealing keys and CRLs existed gets them on a rerun,
# and keeps everything else.
test_old_layout() {
  local out="$tmp/old" dir="$tmp/old/nodes/350212000000" tls sign
  check "old layout: first run succeeds" run_pki --out "$out" --node 350212
  rm -f "$dir"/seal.* "$out"/ca/*/crl.pem "$out"/ca/*/index.txt* \
    "$out"/ca/*/crlnumber* "$out/crl-bundle.pem"
  tls="$(sha256_of "$dir/tls.crt")"
  sign="$(sha256_of "$dir/sign.crt")"
  check "old layout: rerun succeeds" run_pki --out "$out" --node 350212
  check "old layout: only the sealing pair is made" \
    output_has "made node 350212000000 (sealing ecdh-p256)"
  check "old layout: tls.crt kept" hash_is "$dir/tls.crt" "$tls"
  check "old layout: sign.crt kept" hash_is "$dir/sign.crt" "$sign"
  check "old layout: CRL written" \
    crl_is_current "$out/ca/$FUJIAN/crl.pem" "$out/ca/$FUJIAN/ca.crt" 0
  check "old layout: node passes the CRL check" \
    crl_accepts "$out" "$dir/seal.crt"
  check_node "$out" 350212000000 ecdsa-p256 "Node 350212000000"
}

run_in_cwd() {  # DIR ARGS...
  local dir="$1"
  shift
  (cd "$dir" && "$SCRIPT" "$@")
}

test_relative_out_from_other_cwd() {
  mkdir -p "$tmp/cwd"
  check "relative --out from another cwd writes under that cwd" \
    run_in_cwd "$tmp/cwd" --out rel --node 510104
  check "relative --out: tls.crt is under that cwd" \
    test -f "$tmp/cwd/rel/nodes/510104000000/tls.crt"
  check "relative --out: node verifies against its bundle" \
    verifies "$tmp/cwd/rel/ca-bundle.pem" \
    "$tmp/cwd/rel/nodes/510104000000/tls.crt"
}

# Runs the script expecting EXIT_CODE and MESSAGE on stderr.
rejects() {  # EXIT_CODE MESSAGE ARGS...
  local want_rc="$1" message="$2" rc
  shift 2
  "$SCRIPT" "$@" >"$tmp/reject.out" 2>"$tmp/reject.err"
  rc=$?
  [[ "$rc" == "$want_rc" ]] || { echo "exit $rc, want $want_rc"; return 1; }
  grep -qF -- "$message" "$tmp/reject.err" ||
    { echo "stderr lacks '$message':"; cat "$tmp/reject.err"; return 1; }
}

help_shows_usage() {
  "$SCRIPT" --help >"$tmp/help.out" || return 1
  grep -qF -- '--out DIR [--sign-alg ecdsa-p256|ed25519|sm2]' "$tmp/help.out"
}

test_rejections() {
  local out="$tmp/bad"
  check "7-digit code rejected, naming it" \
    rejects 2 "'3502123'" --out "$out" --node 3502123
  check "1-digit code rejected, naming it" \
    rejects 2 "'9'" --out "$out" --node 9
  check "non-digit code rejected, naming it" \
    rejects 2 "'35a2'" --out "$out" --node 35a2
  check "bad operator code rejected" \
    rejects 2 "'3502121'" --out "$out" --operator 3502121:alice
  check "upper-case user rejected" \
    rejects 2 "'Alice'" --out "$out" --operator 350212:Alice
  check "auditor without user rejected" \
    rejects 2 "CODE:USER" --out "$out" --auditor 350212
  check "unknown option rejected" rejects 2 "'--bogus'" --bogus
  check "unknown --sign-alg rejected" \
    rejects 2 "'rsa'" --out "$out" --node 35 --sign-alg rsa
  check "missing --out rejected" rejects 2 "--out" --node 35
  check "--revoke of a missing node rejected" \
    rejects 1 "cannot revoke node 350212000000" --out "$out" --revoke 350212
  check "--rotate of a missing node rejected" \
    rejects 1 "cannot rotate node 350212000000" --out "$out" --rotate 350212
  check "--revoke-client of a missing client rejected" \
    rejects 1 "cannot revoke operator 350212000000:alice" --out "$out" \
    --revoke-client operator:350212:alice
  check "--revoke with --force rejected" \
    rejects 2 "--force cannot be combined" --out "$out" --revoke 35 --force
  check "--rotate with --force rejected" \
    rejects 2 "--force cannot be combined" --out "$out" --rotate 35 --force
  check "bad --revoke-client role rejected" \
    rejects 2 "'admin'" --out "$out" --revoke-client admin:35:alice
  check "bad --revoke code rejected" rejects 2 "'351'" --out "$out" --revoke 351
  check "bare --rotate without --node rejected" \
    rejects 2 "--rotate without CODE" --out "$out" --rotate
  check "nothing rejected before writing" test ! -e "$out"
  check "--help exits 0 with usage" help_shows_usage
}

test_main_layout
test_rerun_keeps_ca
test_sign_alg ed25519
test_sign_alg sm2
test_revocation
test_rotation
test_old_layout
test_relative_out_from_other_cwd
test_rejections

if ((${#failures[@]} > 0)); then
  echo
  echo "${#failures[@]} failed:"
  printf '  %s\n' "${failures[@]}"
  echo "$passed passed, ${#failures[@]} failed"
  exit 1
fi
echo "$passed passed, 0 failed"
