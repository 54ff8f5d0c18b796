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
  check "nothing rejected before writing" test ! -e "$out"
  check "--help exits 0 with usage" help_shows_usage
}

test_main_layout
test_rerun_keeps_ca
test_sign_alg ed25519
test_sign_alg sm2
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
