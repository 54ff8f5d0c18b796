#!/usr/bin/env bash
# Builds a development PKI for caselink: one root CA per province, TLS and
# message-signing certificates per node, and client certificates for
# operators and auditors. Not for production: the CA keys sit next to the
# certificates they sign.
set -euo pipefail

readonly PROG="${0##*/}"
readonly ORG="caselink development"
readonly CA_DAYS=3650
readonly LEAF_DAYS=825

usage() {
  cat <<EOF
Usage:
  $PROG --out DIR [--sign-alg ecdsa-p256|ed25519|sm2] \\
     --node CODE[:NAME] ... [--operator CODE:USER ...] [--auditor CODE:USER ...] [--force]

Writes a development PKI into DIR. CODE is an administrative division code of
2, 4, 6, 9 or 12 digits, padded on the right with zeros to 12 (3502 means
350200000000). Each province (first two digits) gets its own root CA.
At least one --node, --operator or --auditor is required.

  --out DIR        output directory (created if missing)
  --sign-alg ALG   algorithm of the nodes' message-signing keys
                   (default ecdsa-p256); TLS and client keys are always P-256
  --node CODE[:NAME]
                   TLS and signing certificates for a node; NAME goes into
                   DIR/nodes/<code12>/name
  --operator CODE:USER, --auditor CODE:USER
                   client certificate; USER matches [a-z0-9._-]+
  --force          delete DIR/ca, DIR/nodes and DIR/clients and start over
  -h, --help       show this text

Existing CAs and certificate sets are kept on a rerun, so the script can be
run again to add nodes. A node whose signing key has another algorithm than
--sign-alg gets a new signing key and certificate.

Layout:
  DIR/ca/<province12>/ca.crt, ca.key
  DIR/ca-bundle.pem
  DIR/nodes/<code12>/tls.crt, tls.key, tls-chain.pem, sign.crt, sign.key, name
  DIR/clients/operator-<code12>-<USER>/client.crt, client.key
  DIR/clients/auditor-<code12>-<USER>/client.crt, client.key
EOF
}

die() {
  echo "$PROG: $*" >&2
  exit 1
}

usage_error() {
  echo "$PROG: $*" >&2
  echo "Try '$PROG --help'." >&2
  exit 2
}

# Runs openssl with its chatter captured; shows it only when the call fails.
# OpenSSL 3.0 prints "Certificate request self-signature ok" on every signing.
ossl() {
  if ! openssl "$@" 2>"$work/openssl.err"; then
    echo "$PROG: openssl $1 failed:" >&2
    cat "$work/openssl.err" >&2
    exit 1
  fi
}

# Prints CODE padded to 12 digits, or fails naming the bad code and option.
normalize_code() {
  local code="$1" option="$2"
  if [[ ! "$code" =~ ^[0-9]+$ ]]; then
    usage_error "bad division code '$code' in $option: digits only"
  fi
  case ${#code} in
    2 | 4 | 6 | 9 | 12) ;;
    *)
      usage_error "bad division code '$code' in $option: has ${#code}" \
        "digits, must have 2, 4, 6, 9 or 12"
      ;;
  esac
  local padded="${code}000000000000"
  echo "${padded:0:12}"
}

# Prints ecdsa-p256, ed25519, sm2 or unknown for the key file KEY.
key_algorithm() {
  local text
  text="$(openssl pkey -in "$1" -noout -text_pub 2>/dev/null)" || {
    echo unknown
    return
  }
  case "$text" in
    *"ED25519 Public-Key"*) echo ed25519 ;;
    *"ASN1 OID: SM2"*) echo sm2 ;;
    *"ASN1 OID: prime256v1"*) echo ecdsa-p256 ;;
    *) echo unknown ;;
  esac
}

# Writes a new private key of ALG to PATH. The global umask 077 makes it 0600
# from the moment it exists.
generate_key() {
  local alg="$1" path="$2"
  case "$alg" in
    ecdsa-p256)
      ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
        -pkeyopt ec_param_enc:named_curve -out "$path"
      ;;
    ed25519) ossl genpkey -algorithm ed25519 -out "$path" ;;
    sm2) ossl genpkey -algorithm SM2 -out "$path" ;;
    *) die "internal: unknown key algorithm '$alg'" ;;
  esac
}

# True if CERT's public key is the public key of KEY.
key_matches_cert() {
  local cert="$1" key="$2" cert_pub key_pub
  cert_pub="$(openssl x509 -in "$cert" -noout -pubkey 2>/dev/null)" || return 1
  key_pub="$(openssl pkey -in "$key" -pubout 2>/dev/null)" || return 1
  [[ -n "$cert_pub" && "$cert_pub" == "$key_pub" ]]
}

# True if CERT and KEY exist, belong together and CERT is currently valid
# under CA_CERT. Anything else means the set must be made again.
cert_set_is_usable() {
  local cert="$1" key="$2" ca_cert="$3"
  [[ -f "$cert" && -f "$key" ]] || return 1
  openssl verify -CAfile "$ca_cert" "$cert" >/dev/null 2>&1 || return 1
  key_matches_cert "$cert" "$key"
}

# Issues OUT_CERT for the key KEY with SUBJECT, signed by the CA of PROVINCE,
# with the extensions given as lines in the remaining arguments.
issue_cert() {
  local key="$1" subject="$2" province="$3" out_cert="$4"
  shift 4
  local ca_dir="$out/ca/$province"

  # The CSR only carries the subject and proves possession of the key.
  ossl req -new -config "$work/req.cnf" -key "$key" -subj "$subject" \
    -out "$work/leaf.csr"

  {
    echo "[leaf]"
    echo "basicConstraints = critical,CA:false"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    printf '%s\n' "$@"
  } >"$work/leaf.ext"

  # The CA key is P-256 whatever the subject key is, so sha256 always fits.
  ossl x509 -req -in "$work/leaf.csr" -CA "$ca_dir/ca.crt" \
    -CAkey "$ca_dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -days "$LEAF_DAYS" -sha256 -extfile "$work/leaf.ext" -extensions leaf \
    -out "$out_cert"
  chmod 0644 "$out_cert"
}

# Makes the key directory DIR, private to its owner.
make_key_dir() {
  mkdir -p "$1"
  chmod 0700 "$1"
}

# Moves the files NAMES from the work directory into DIR, replacing old ones.
install_files() {
  local dir="$1" name
  shift
  for name in "$@"; do
    mv -f "$work/$name" "$dir/$name"
  done
}

declare -A ca_ready=()

# Makes sure the root CA of PROVINCE exists, creating it if needed.
ensure_ca() {
  local province="$1"
  local ca_dir="$out/ca/$province"
  [[ -n "${ca_ready[$province]:-}" ]] && return 0

  # Reuse an existing CA only when it is whole; a lone certificate or key
  # would silently orphan every certificate already signed by it.
  if [[ -f "$ca_dir/ca.crt" || -f "$ca_dir/ca.key" ]]; then
    [[ -f "$ca_dir/ca.crt" && -f "$ca_dir/ca.key" ]] ||
      die "$ca_dir holds only one of ca.crt and ca.key; rerun with --force"
    key_matches_cert "$ca_dir/ca.crt" "$ca_dir/ca.key" ||
      die "$ca_dir/ca.key does not match ca.crt; rerun with --force"
    chmod 0600 "$ca_dir/ca.key"
    ca_ready[$province]=1
    return 0
  fi

  # Create the self-signed root.
  make_key_dir "$ca_dir"
  generate_key ecdsa-p256 "$work/ca.key"
  ossl req -x509 -new -config "$work/req.cnf" -extensions ca_ext \
    -key "$work/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -subj "/O=$ORG/OU=$province/CN=caselink dev root $province" \
    -days "$CA_DAYS" -sha256 -out "$work/ca.crt"
  chmod 0644 "$work/ca.crt"
  install_files "$ca_dir" ca.key ca.crt
  ca_ready[$province]=1
  echo "made ca $province"
}

# Makes the TLS and signing certificates of node CODE with display NAME.
make_node() {
  local code="$1" name="$2"
  local province="${code:0:2}0000000000"
  local dir="$out/nodes/$code"
  local ca_cert="$out/ca/$province/ca.crt"
  local made=()
  local san="DNS:$code.node.caselink,URI:urn:caselink:node:$code"
  san+=",IP:127.0.0.1,DNS:localhost"
  ensure_ca "$province"
  make_key_dir "$dir"

  # TLS: serverAuth and clientAuth, since nodes call each other.
  if cert_set_is_usable "$dir/tls.crt" "$dir/tls.key" "$ca_cert"; then
    chmod 0600 "$dir/tls.key"
  else
    generate_key ecdsa-p256 "$work/tls.key"
    issue_cert "$work/tls.key" "/O=$ORG/OU=node/CN=$code" "$province" \
      "$work/tls.crt" \
      "keyUsage = critical,digitalSignature" \
      "extendedKeyUsage = serverAuth,clientAuth" \
      "subjectAltName = $san"
    install_files "$dir" tls.key tls.crt
    made+=("tls")
  fi
  cat "$dir/tls.crt" "$ca_cert" >"$work/tls-chain.pem"
  chmod 0644 "$work/tls-chain.pem"
  install_files "$dir" tls-chain.pem

  # Message signing: a separate key, so its algorithm can differ from TLS.
  local old_alg=""
  if cert_set_is_usable "$dir/sign.crt" "$dir/sign.key" "$ca_cert"; then
    old_alg="$(key_algorithm "$dir/sign.key")"
  fi
  if [[ "$old_alg" == "$sign_alg" ]]; then
    chmod 0600 "$dir/sign.key"
  else
    generate_key "$sign_alg" "$work/sign.key"
    issue_cert "$work/sign.key" "/O=$ORG/OU=signing/CN=$code" "$province" \
      "$work/sign.crt" \
      "keyUsage = critical,digitalSignature,nonRepudiation" \
      "subjectAltName = URI:urn:caselink:node:$code"
    install_files "$dir" sign.key sign.crt
    if [[ -n "$old_alg" ]]; then
      made+=("signing $sign_alg, was $old_alg")
    else
      made+=("signing $sign_alg")
    fi
  fi

  # A name given now wins; otherwise keep the one already written.
  if [[ -n "$name" ]]; then
    printf '%s\n' "$name" >"$work/name"
  elif [[ -f "$dir/name" ]]; then
    cp "$dir/name" "$work/name"
  else
    printf 'Node %s\n' "$code" >"$work/name"
  fi
  chmod 0644 "$work/name"
  install_files "$dir" name

  if ((${#made[@]} == 0)); then
    echo "kept node $code"
  else
    local joined
    joined="$(printf '%s, ' "${made[@]}")"
    echo "made node $code (${joined%, })"
  fi
}

# Makes the client certificate of ROLE (operator or auditor) USER at CODE.
make_client() {
  local role="$1" code="$2" user="$3"
  local province="${code:0:2}0000000000"
  local dir="$out/clients/$role-$code-$user"
  ensure_ca "$province"
  make_key_dir "$dir"

  if cert_set_is_usable "$dir/client.crt" "$dir/client.key" \
    "$out/ca/$province/ca.crt"; then
    chmod 0600 "$dir/client.key"
    echo "kept $role $code:$user"
    return 0
  fi
  generate_key ecdsa-p256 "$work/client.key"
  issue_cert "$work/client.key" "/O=$ORG/OU=$role/CN=$user" "$province" \
    "$work/client.crt" \
    "keyUsage = critical,digitalSignature" \
    "extendedKeyUsage = clientAuth" \
    "subjectAltName = URI:urn:caselink:$role:$code:$user"
  install_files "$dir" client.key client.crt
  echo "made $role $code:$user"
}

# Rebuilds DIR/ca-bundle.pem from every province CA present in DIR.
write_bundle() {
  local certs=("$out"/ca/*/ca.crt)
  [[ -f "${certs[0]}" ]] || die "no CA certificates under $out/ca"
  cat "${certs[@]}" >"$work/ca-bundle.pem"
  chmod 0644 "$work/ca-bundle.pem"
  mv -f "$work/ca-bundle.pem" "$out/ca-bundle.pem"
  echo "wrote ca-bundle.pem (${#certs[@]} CAs)"
}

# Splits a CODE:USER argument of OPTION into the arrays client_roles,
# client_codes and client_users.
add_client() {
  local role="$1" option="$2" value="$3"
  [[ "$value" == *:* ]] || usage_error "$option needs CODE:USER, got '$value'"
  local code user="${value#*:}"
  code="$(normalize_code "${value%%:*}" "$option")"
  [[ "$user" =~ ^[a-z0-9._-]+$ ]] ||
    usage_error "bad user '$user' in $option: must match [a-z0-9._-]+"
  client_roles+=("$role")
  client_codes+=("$code")
  client_users+=("$user")
}

# --- Parse arguments; everything is checked before anything is written. ---

out=""
sign_alg="ecdsa-p256"
force=0
node_codes=()
node_names=()
client_roles=()
client_codes=()
client_users=()

while (($# > 0)); do
  option="$1"
  value=""
  case "$option" in
    -h | --help)
      usage
      exit 0
      ;;
    --force)
      force=1
      shift
      continue
      ;;
    --out=* | --sign-alg=* | --node=* | --operator=* | --auditor=*)
      value="${option#*=}"
      option="${option%%=*}"
      shift
      ;;
    --out | --sign-alg | --node | --operator | --auditor)
      (($# >= 2)) || usage_error "$option needs a value"
      value="$2"
      shift 2
      ;;
    *) usage_error "unknown option '$option'" ;;
  esac

  case "$option" in
    --out) out="$value" ;;
    --sign-alg)
      case "$value" in
        ecdsa-p256 | ed25519 | sm2) sign_alg="$value" ;;
        *) usage_error "unknown --sign-alg '$value'" ;;
      esac
      ;;
    --node)
      node_codes+=("$(normalize_code "${value%%:*}" --node)")
      if [[ "$value" == *:* ]]; then
        node_names+=("${value#*:}")
      else
        node_names+=("")
      fi
      ;;
    --operator) add_client operator --operator "$value" ;;
    --auditor) add_client auditor --auditor "$value" ;;
  esac
done

[[ -n "$out" ]] || usage_error "--out DIR is required"
if ((${#node_codes[@]} + ${#client_codes[@]} == 0)); then
  usage_error "nothing to make: give at least one --node, --operator or" \
    "--auditor"
fi
command -v openssl >/dev/null || die "openssl not found in PATH"

# --- Prepare the output and work directories. ---

# Everything is private unless made public on purpose: keys are 0600 from
# the moment they are created, certificates are chmod'ed to 0644.
umask 077

work="$(mktemp -d "${TMPDIR:-/tmp}/make-dev-pki.XXXXXX")"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Subjects always come from -subj, so req needs no prompts or defaults and
# the distribution's openssl.cnf is never read.
cat >"$work/req.cnf" <<'EOF'
[req]
distinguished_name = dn
[dn]
[ca_ext]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF

(umask 022 && mkdir -p "$out")
if ((force)); then
  rm -rf -- "$out/ca" "$out/nodes" "$out/clients" "$out/ca-bundle.pem"
fi
for sub in ca nodes clients; do
  (umask 022 && mkdir -p "$out/$sub")
done

# --- Make the requested certificate sets. ---

for i in "${!node_codes[@]}"; do
  make_node "${node_codes[$i]}" "${node_names[$i]}"
done
for i in "${!client_codes[@]}"; do
  make_client "${client_roles[$i]}" "${client_codes[$i]}" "${client_users[$i]}"
done
write_bundle
