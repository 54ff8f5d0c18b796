#!/usr/bin/env bash
# Builds a development PKI for caselink: one root CA per province, TLS,
# message-signing and sealing (encryption) certificates per node, client
# certificates for operators and auditors, and a CRL per province. Not for
# production: the CA keys sit next to the certificates they sign.
set -euo pipefail

readonly PROG="${0##*/}"
readonly ORG="caselink development"
readonly CA_DAYS=3650
readonly LEAF_DAYS=825
readonly CRL_DAYS=30
# A CRL that would expire within this many days is issued again on a rerun.
readonly CRL_RENEW_DAYS=15

usage() {
  cat <<EOF
Usage:
  $PROG --out DIR [--sign-alg ecdsa-p256|ed25519|sm2] \\
     --node CODE[:NAME] ... [--operator CODE:USER ...] [--auditor CODE:USER ...] [--force]
  $PROG --out DIR [--sign-alg ALG] [--rotate CODE ...] [--revoke CODE ...] \\
     [--revoke-client ROLE:CODE:USER ...] [--node ...]

Writes a development PKI into DIR. CODE is an administrative division code of
2, 4, 6, 9 or 12 digits, padded on the right with zeros to 12 (3502 means
350200000000). Each province (first two digits) gets its own root CA.
At least one --node, --operator, --auditor, --rotate, --revoke or
--revoke-client is required.

  --out DIR        output directory (created if missing)
  --sign-alg ALG   algorithm of the nodes' message-signing keys
                   (default ecdsa-p256); it also picks the sealing key:
                   ecdsa-p256 -> ECDH P-256, ed25519 -> X25519, sm2 -> SM2
                   encryption. TLS and client keys are always P-256
  --node CODE[:NAME]
                   TLS, signing and sealing certificates for a node; NAME
                   goes into DIR/nodes/<code12>/name
  --operator CODE:USER, --auditor CODE:USER
                   client certificate; USER matches [a-z0-9._-]+
  --rotate CODE    new TLS, signing and sealing keys and certificates for the
                   existing node CODE (implies --node CODE); the signing and
                   sealing pairs it replaces are kept as
                   sign.prev-<SERIAL>.crt/.key and seal.prev-<SERIAL>.crt/.key.
                   Without CODE, rotates every --node of this run
  --revoke CODE    revoke the current tls.crt, sign.crt and seal.crt of the
                   existing node CODE; the files stay in place until
                   --rotate CODE replaces them
  --revoke-client ROLE:CODE:USER
                   revoke an existing client certificate (ROLE is operator or
                   auditor); to issue a new one, delete its directory and run
                   --ROLE CODE:USER again
  --force          delete DIR/ca, DIR/nodes and DIR/clients and start over
                   (not with --rotate, --revoke or --revoke-client)
  -h, --help       show this text

Existing CAs and certificate sets are kept on a rerun, so the script can be
run again to add nodes. A node whose signing or sealing key does not match
--sign-alg gets a new signing and sealing pair; the pairs it replaces are
kept as sign.prev-<SERIAL>.* and seal.prev-<SERIAL>.*. Revocations come first in a run, then
rotations and new certificates. Every province CA has a CRL (valid for
$CRL_DAYS days); it is issued again, with a higher CRL number, when its list of
revoked certificates changed or it expires within $CRL_RENEW_DAYS days, and kept
otherwise.

Output is one line per action. "signing ALG" in "made node" stands for the
signing and the sealing pair; "sealing ALG" alone means only the sealing pair
was made.

Layout:
  DIR/ca/<province12>/ca.crt, ca.key
  DIR/ca/<province12>/crl.pem
  DIR/ca/<province12>/index.txt, crlnumber (revocation state, openssl ca)
  DIR/ca-bundle.pem, DIR/crl-bundle.pem
  DIR/nodes/<code12>/tls.crt, tls.key, tls-chain.pem, sign.crt, sign.key,
                     seal.crt, seal.key, name
  DIR/nodes/<code12>/sign.prev-<SERIAL>.crt, sign.prev-<SERIAL>.key
  DIR/nodes/<code12>/seal.prev-<SERIAL>.crt, seal.prev-<SERIAL>.key
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

# Prints ecdsa-p256 (any P-256 key), ed25519, x25519, sm2 or unknown for
# TEXT, the output of openssl pkey -text_pub.
algorithm_in_text() {
  case "$1" in
    *"ED25519 Public-Key"*) echo ed25519 ;;
    *"X25519 Public-Key"*) echo x25519 ;;
    *"ASN1 OID: SM2"*) echo sm2 ;;
    *"ASN1 OID: prime256v1"*) echo ecdsa-p256 ;;
    *) echo unknown ;;
  esac
}

# Prints the algorithm of the key file KEY, as algorithm_in_text does.
key_algorithm() {
  local text
  text="$(openssl pkey -in "$1" -noout -text_pub 2>/dev/null)" || {
    echo unknown
    return
  }
  algorithm_in_text "$text"
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
    x25519) ossl genpkey -algorithm X25519 -out "$path" ;;
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

# True if the two openssl outputs A and B hold the same PEM public key.
same_public_key() {
  local a="${1#*-----BEGIN PUBLIC KEY-----}"
  local b="${2#*-----BEGIN PUBLIC KEY-----}"
  a="${a%%-----END PUBLIC KEY-----*}"
  b="${b%%-----END PUBLIC KEY-----*}"
  [[ "$1" == *"-----BEGIN PUBLIC KEY-----"* && -n "$a" && "$a" == "$b" ]]
}

# Set by cert_set_is_usable for a usable set: the algorithm of its key (as
# key_algorithm prints it) and the serial number of its certificate. Saves
# openssl calls, which cost OpenSSL 3.0 some 10 ms each.
usable_alg=""
usable_serial=""

# True if CERT and KEY exist, belong together and CERT is currently valid
# under CA_CERT. Anything else means the set must be made again.
cert_set_is_usable() {
  local cert="$1" key="$2" ca_cert="$3" cert_out key_out
  usable_alg=""
  usable_serial=""
  [[ -f "$cert" && -f "$key" ]] || return 1
  openssl verify -CAfile "$ca_cert" "$cert" >/dev/null 2>&1 || return 1
  cert_out="$(openssl x509 -in "$cert" -noout -serial -pubkey 2>/dev/null)" ||
    return 1
  key_out="$(openssl pkey -in "$key" -pubout -text_pub 2>/dev/null)" ||
    return 1
  same_public_key "$cert_out" "$key_out" || return 1
  usable_alg="$(algorithm_in_text "$key_out")"
  usable_serial="${cert_out#serial=}"
  usable_serial="${usable_serial%%$'\n'*}"
}

# Prints a random 128-bit certificate serial number in hex, with 0x.
# (od rather than openssl rand: each openssl call costs OpenSSL 3.0 ~10 ms.)
random_serial() {
  local hex
  hex="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  [[ "$hex" =~ ^[0-9a-f]{32}$ ]] || die "cannot read /dev/urandom"
  echo "0x$hex"
}

# Issues OUT_CERT for the key KEY of algorithm ALG with SUBJECT, signed by
# the CA of PROVINCE, with the extensions given as lines in the remaining
# arguments.
issue_cert() {
  local alg="$1" key="$2" subject="$3" province="$4" out_cert="$5"
  shift 5
  local ca_dir="$out/ca/$province" serial
  serial="$(random_serial)"

  {
    echo "[leaf]"
    echo "basicConstraints = critical,CA:false"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid"
    printf '%s\n' "$@"
  } >"$work/leaf.ext"

  # The CA key is P-256 whatever the subject key is, so sha256 always fits.
  if [[ "$alg" == x25519 ]]; then
    # An X25519 key cannot sign, so it cannot make a CSR. x509 -new builds
    # the certificate from the subject and the public key alone. OpenSSL 3.0
    # reads -force_pubkey only as a public key file: given the private key it
    # fails with "Could not read explicitly set public key".
    ossl pkey -in "$key" -pubout -out "$work/leaf.pub"
    ossl x509 -new -subj "$subject" -force_pubkey "$work/leaf.pub" \
      -CA "$ca_dir/ca.crt" -CAkey "$ca_dir/ca.key" -set_serial "$serial" \
      -days "$LEAF_DAYS" -sha256 -extfile "$work/leaf.ext" -extensions leaf \
      -out "$out_cert"
  else
    # The CSR only carries the subject and proves possession of the key.
    ossl req -new -config "$work/req.cnf" -key "$key" -subj "$subject" \
      -out "$work/leaf.csr"
    ossl x509 -req -in "$work/leaf.csr" -CA "$ca_dir/ca.crt" \
      -CAkey "$ca_dir/ca.key" -set_serial "$serial" \
      -days "$LEAF_DAYS" -sha256 -extfile "$work/leaf.ext" -extensions leaf \
      -out "$out_cert"
  fi
  chmod 0644 "$out_cert"
}

# True if CERT was signed by CA_CERT, whether or not it has expired.
issued_by() {
  local ca_cert="$1" cert="$2"
  openssl verify -no_check_time -CAfile "$ca_cert" "$cert" >/dev/null 2>&1
}

# Prints a serial number (hex) in one canonical form: upper case, no leading
# zeros. openssl prints serials with an even number of digits.
canonical_serial() {
  local serial="${1^^}"
  while [[ "$serial" == 0?* ]]; do
    serial="${serial#0}"
  done
  echo "${serial:-0}"
}

# Prints the serial number of CERT as openssl prints it (upper-case hex).
cert_serial() {
  local line
  line="$(openssl x509 -in "$1" -noout -serial 2>/dev/null)" || return 1
  echo "${line#serial=}"
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

# --- Revocation state: openssl ca's database in each CA directory. ---
#
# index.txt lists the revoked certificates (openssl ca -revoke adds a
# certificate it has not seen, then marks it revoked; certificates are
# issued with openssl x509, so valid ones are not listed). crlnumber holds
# the next CRL number. openssl ca runs inside the CA directory with
# $work/ca.cnf, whose file names are relative, so no path is ever parsed by
# openssl's config syntax.

# Runs openssl ca for the CA of PROVINCE with the remaining arguments.
run_ca() {
  local ca_dir="$out/ca/$1"
  shift
  (cd "$ca_dir" && ossl ca -batch -config "$work/ca.cnf" "$@")
}

# Prints the canonical serials revoked by the CA of PROVINCE, sorted.
revoked_serials() {
  local index="$out/ca/$1/index.txt"
  [[ -f "$index" ]] || return 0
  awk -F'\t' '$1 == "R" {
      s = toupper($4); sub(/^0+/, "", s); print (s == "" ? "0" : s)
    }' "$index" | LC_ALL=C sort -u
}

# True if any of the SERIALS is revoked by the CA of PROVINCE.
serial_is_revoked() {
  local province="$1" revoked serial
  shift
  revoked="$(revoked_serials "$province")"
  [[ -n "$revoked" ]] || return 1
  for serial in "$@"; do
    serial="$(canonical_serial "$serial")"
    grep -qxF -- "$serial" <<<"$revoked" && return 0
  done
  return 1
}

# True if CERT is revoked in the database of the CA of PROVINCE.
cert_is_revoked() {
  local province="$1" cert="$2" serial
  [[ -f "$cert" ]] || return 1
  serial="$(cert_serial "$cert")" || return 1
  serial_is_revoked "$province" "$serial"
}

# Revokes CERT in the database of the CA of PROVINCE unless it already is;
# counts the outcome in the caller's variables newly and already.
revoke_cert() {
  local province="$1" cert="$2"
  if cert_is_revoked "$province" "$cert"; then
    already=$((already + 1))
  else
    run_ca "$province" -revoke "$cert"
    newly=$((newly + 1))
  fi
}

# Prints "1 certificate" or "N certificates".
count_certs() {
  if (($1 == 1)); then
    echo "1 certificate"
  else
    echo "$1 certificates"
  fi
}

# Prints the outcome of revoking WHAT: NEWLY revoked now, ALREADY before.
report_revocation() {
  local what="$1" newly="$2" already="$3"
  if ((newly == 0)); then
    echo "$what already revoked ($(count_certs "$already"))"
  elif ((already == 0)); then
    echo "revoked $what ($(count_certs "$newly"))"
  else
    echo "revoked $what ($(count_certs "$newly"), $already already revoked)"
  fi
}

# Revokes the current tls, sign and seal certificates of node CODE.
revoke_node() {
  local code="$1" province="${1:0:2}0000000000" newly=0 already=0 set
  ensure_ca "$province"
  for set in tls sign seal; do
    if [[ -f "$out/nodes/$code/$set.crt" ]]; then
      revoke_cert "$province" "$out/nodes/$code/$set.crt"
    fi
  done
  report_revocation "node $code" "$newly" "$already"
}

# Revokes the client certificate of ROLE USER at CODE.
revoke_client() {
  local role="$1" code="$2" user="$3"
  local province="${code:0:2}0000000000" newly=0 already=0
  ensure_ca "$province"
  revoke_cert "$province" "$out/clients/$role-$code-$user/client.crt"
  report_revocation "$role $code:$user" "$newly" "$already"
}

# Prints a CRL number as openssl ca reads it: hex with an even digit count.
crl_number_hex() {
  local hex
  hex="$(printf '%X' "$1")"
  ((${#hex} % 2 == 0)) || hex="0$hex"
  echo "$hex"
}

# Makes sure DIR/ca/PROVINCE/crl.pem is a current CRL of that CA listing
# exactly the certificates revoked in its database; issues a new one if not.
update_crl() {
  local province="$1"
  local ca_dir="$out/ca/$province"
  local want have="" text="" count old_number=0 next_update="" line
  want="$(revoked_serials "$province")"
  count="$(grep -c . <<<"$want" || true)"

  if [[ -f "$ca_dir/crl.pem" ]] &&
    text="$(openssl crl -in "$ca_dir/crl.pem" -CAfile "$ca_dir/ca.crt" \
      -noout -crlnumber -nextupdate -text 2>/dev/null)"; then
    while IFS= read -r line; do
      case "$line" in
        crlNumber=0x*)
          line="${line#crlNumber=0x}"
          [[ "$line" =~ ^[0-9A-Fa-f]{1,15}$ ]] && old_number=$((16#$line))
          ;;
        nextUpdate=*) next_update="${line#nextUpdate=}" ;;
      esac
    done <<<"$text"
    have="$(awk '$1 == "Serial" && $2 == "Number:" {
        s = toupper($3); sub(/^0+/, "", s); print (s == "" ? "0" : s)
      }' <<<"$text" | LC_ALL=C sort -u)"
    local expires
    if [[ "$have" == "$want" ]] &&
      expires="$(date -d "$next_update" +%s 2>/dev/null)" &&
      ((expires - $(date +%s) > CRL_RENEW_DAYS * 86400)); then
      echo "kept crl for $province ($count revoked)"
      return 0
    fi
  fi

  # The next number is above both the stored counter and the CRL it
  # replaces, so it grows even if crlnumber was lost.
  local next=1
  if [[ -f "$ca_dir/crlnumber" ]]; then
    line="$(tr -d ' \r\n' <"$ca_dir/crlnumber")"
    [[ "$line" =~ ^[0-9A-Fa-f]{1,15}$ ]] && next=$((16#$line))
  fi
  ((next > old_number)) || next=$((old_number + 1))
  crl_number_hex "$next" >"$ca_dir/crlnumber"

  run_ca "$province" -gencrl -crldays "$CRL_DAYS" -out "$work/crl.pem"
  chmod 0644 "$work/crl.pem"
  install_files "$ca_dir" crl.pem
  echo "wrote crl for $province ($count revoked)"
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
    # CAs made before revocation support have no database yet.
    [[ -f "$ca_dir/index.txt" ]] || : >"$ca_dir/index.txt"
    ca_ready[$province]=1
    return 0
  fi

  # Create the self-signed root.
  make_key_dir "$ca_dir"
  generate_key ecdsa-p256 "$work/ca.key"
  ossl req -x509 -new -config "$work/req.cnf" -extensions ca_ext \
    -key "$work/ca.key" -set_serial "$(random_serial)" \
    -subj "/O=$ORG/OU=$province/CN=caselink dev root $province" \
    -days "$CA_DAYS" -sha256 -out "$work/ca.crt"
  chmod 0644 "$work/ca.crt"
  install_files "$ca_dir" ca.key ca.crt
  : >"$ca_dir/index.txt"
  ca_ready[$province]=1
  echo "made ca $province"
}

# Prints the sealing key type that goes with the signing algorithm ALG.
seal_type_for() {
  case "$1" in
    ecdsa-p256) echo ecdsa-p256 ;; # a P-256 key, used for ECDH
    ed25519) echo x25519 ;;
    sm2) echo sm2 ;;
    *) die "internal: unknown signing algorithm '$1'" ;;
  esac
}

# Prints the name of the sealing key type TYPE as the output shows it.
seal_name() {
  case "$1" in
    ecdsa-p256) echo ecdh-p256 ;;
    *) echo "$1" ;;
  esac
}

# Moves the pair SET (sign or seal) of node directory DIR to
# SET.prev-<SERIAL>.crt and .key: what the old signing key signed can still
# be checked, and what was sealed to the old sealing key can still be
# opened. Does nothing unless the pair is there and belongs together.
keep_previous_pair() {
  local dir="$1" set="$2" serial
  [[ -f "$dir/$set.crt" && -f "$dir/$set.key" ]] || return 0
  key_matches_cert "$dir/$set.crt" "$dir/$set.key" || return 0
  serial="$(cert_serial "$dir/$set.crt")" || return 0
  chmod 0600 "$dir/$set.key"
  chmod 0644 "$dir/$set.crt"
  mv -f "$dir/$set.key" "$dir/$set.prev-$serial.key"
  mv -f "$dir/$set.crt" "$dir/$set.prev-$serial.crt"
}

# Makes the TLS, signing and sealing certificates of node CODE with display
# NAME. With ROTATE=1 all three are made anew.
make_node() {
  local code="$1" name="$2" rotate="${3:-0}"
  local province="${code:0:2}0000000000"
  local dir="$out/nodes/$code"
  local ca_cert="$out/ca/$province/ca.crt"
  local made=() kept_serials=()
  local san="DNS:$code.node.caselink,URI:urn:caselink:node:$code"
  san+=",IP:127.0.0.1,DNS:localhost"
  ensure_ca "$province"
  make_key_dir "$dir"

  # TLS: serverAuth and clientAuth, since nodes call each other.
  if ((!rotate)) &&
    cert_set_is_usable "$dir/tls.crt" "$dir/tls.key" "$ca_cert"; then
    chmod 0600 "$dir/tls.key"
    kept_serials+=("$usable_serial")
  else
    generate_key ecdsa-p256 "$work/tls.key"
    issue_cert ecdsa-p256 "$work/tls.key" "/O=$ORG/OU=node/CN=$code" \
      "$province" "$work/tls.crt" \
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
  local old_alg="" sign_made=0
  if cert_set_is_usable "$dir/sign.crt" "$dir/sign.key" "$ca_cert"; then
    old_alg="$usable_alg"
  fi
  if ((!rotate)) && [[ "$old_alg" == "$sign_alg" ]]; then
    chmod 0600 "$dir/sign.key"
    kept_serials+=("$usable_serial")
  else
    generate_key "$sign_alg" "$work/sign.key"
    issue_cert "$sign_alg" "$work/sign.key" "/O=$ORG/OU=signing/CN=$code" \
      "$province" "$work/sign.crt" \
      "keyUsage = critical,digitalSignature,nonRepudiation" \
      "subjectAltName = URI:urn:caselink:node:$code"
    # A working signing pair that is replaced may have signed envelopes
    # that verifiers still need to check.
    if ((rotate)) || [[ -n "$old_alg" ]]; then
      keep_previous_pair "$dir" sign
    fi
    install_files "$dir" sign.key sign.crt
    sign_made=1
  fi

  # Sealing: a key others encrypt to, of the family of the signing key.
  local seal_type old_seal="" seal_made=0 seal_usage
  seal_type="$(seal_type_for "$sign_alg")"
  if cert_set_is_usable "$dir/seal.crt" "$dir/seal.key" "$ca_cert"; then
    old_seal="$usable_alg"
  fi
  if ((!rotate)) && [[ "$old_seal" == "$seal_type" ]]; then
    chmod 0600 "$dir/seal.key"
    kept_serials+=("$usable_serial")
  else
    # SM2 encrypts to the key directly; P-256 and X25519 agree on a key.
    if [[ "$seal_type" == sm2 ]]; then
      seal_usage="keyUsage = critical,keyEncipherment,dataEncipherment"
    else
      seal_usage="keyUsage = critical,keyAgreement"
    fi
    generate_key "$seal_type" "$work/seal.key"
    issue_cert "$seal_type" "$work/seal.key" "/O=$ORG/OU=sealing/CN=$code" \
      "$province" "$work/seal.crt" "$seal_usage" \
      "subjectAltName = URI:urn:caselink:node:$code"
    # Payloads may still be on their way sealed to the pair replaced.
    if ((rotate)) || [[ -n "$old_seal" ]]; then
      keep_previous_pair "$dir" seal
    fi
    install_files "$dir" seal.key seal.crt
    seal_made=1
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

  # "signing ALG" covers the signing and the sealing pair made together.
  local signing="signing $sign_alg"
  if [[ -n "$old_alg" && "$old_alg" != "$sign_alg" ]]; then
    signing+=", was $old_alg"
  fi
  if ((rotate)); then
    echo "rotated node $code ($signing)"
    return 0
  fi
  if ((sign_made && seal_made)); then
    made+=("$signing")
  elif ((sign_made)); then
    made+=("$signing" "sealing kept")
  elif ((seal_made)); then
    local sealing
    sealing="sealing $(seal_name "$seal_type")"
    if [[ -n "$old_seal" ]]; then
      sealing+=", was $(seal_name "$old_seal")"
    fi
    made+=("$sealing")
  fi

  if ((${#made[@]} == 0)); then
    if serial_is_revoked "$province" "${kept_serials[@]}"; then
      echo "kept node $code (revoked; --rotate $code issues new certificates)"
    else
      echo "kept node $code"
    fi
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
    if serial_is_revoked "$province" "$usable_serial"; then
      echo "kept $role $code:$user (revoked)"
    else
      echo "kept $role $code:$user"
    fi
    return 0
  fi
  generate_key ecdsa-p256 "$work/client.key"
  issue_cert ecdsa-p256 "$work/client.key" "/O=$ORG/OU=$role/CN=$user" \
    "$province" "$work/client.crt" \
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

# Brings the CRL of every province CA present in DIR up to date, then
# rebuilds DIR/crl-bundle.pem from them, in the order of ca-bundle.pem.
write_crls() {
  local certs=("$out"/ca/*/ca.crt) cert province crls=()
  [[ -f "${certs[0]}" ]] || die "no CA certificates under $out/ca"
  for cert in "${certs[@]}"; do
    province="$(basename "$(dirname "$cert")")"
    ensure_ca "$province"
    update_crl "$province"
    crls+=("$out/ca/$province/crl.pem")
  done
  cat "${crls[@]}" >"$work/crl-bundle.pem"
  chmod 0644 "$work/crl-bundle.pem"
  mv -f "$work/crl-bundle.pem" "$out/crl-bundle.pem"
  echo "wrote crl-bundle.pem (${#crls[@]} CRLs)"
}

# Parses a CODE:USER argument of OPTION into the globals parsed_code and
# parsed_user.
parse_code_user() {
  local option="$1" value="$2"
  [[ "$value" == *:* ]] || usage_error "$option needs CODE:USER, got '$value'"
  parsed_user="${value#*:}"
  parsed_code="$(normalize_code "${value%%:*}" "$option")"
  [[ "$parsed_user" =~ ^[a-z0-9._-]+$ ]] ||
    usage_error "bad user '$parsed_user' in $option: must match [a-z0-9._-]+"
}

# Splits a CODE:USER argument of OPTION into the arrays client_roles,
# client_codes and client_users.
add_client() {
  local role="$1" option="$2" value="$3"
  parse_code_user "$option" "$value"
  client_roles+=("$role")
  client_codes+=("$parsed_code")
  client_users+=("$parsed_user")
}

# Splits a ROLE:CODE:USER argument of --revoke-client into the arrays
# revoke_client_roles, revoke_client_codes and revoke_client_users.
add_revoke_client() {
  local value="$1" role="${1%%:*}"
  [[ "$value" == *:*:* ]] ||
    usage_error "--revoke-client needs ROLE:CODE:USER, got '$value'"
  case "$role" in
    operator | auditor) ;;
    *)
      usage_error "bad role '$role' in --revoke-client: must be operator" \
        "or auditor"
      ;;
  esac
  parse_code_user --revoke-client "${value#*:}"
  revoke_client_roles+=("$role")
  revoke_client_codes+=("$parsed_code")
  revoke_client_users+=("$parsed_user")
}

# Checks, before anything is written, that node CODE can be revoked: it has
# certificates, and each was issued by its province CA.
check_revocable_node() {
  local code="$1" province="${1:0:2}0000000000" set found=0
  local dir="$out/nodes/$code" ca_cert="$out/ca/$province/ca.crt"
  [[ -f "$ca_cert" ]] ||
    die "cannot revoke node $code: there is no CA $province in $out/ca"
  for set in tls sign seal; do
    [[ -f "$dir/$set.crt" ]] || continue
    found=1
    issued_by "$ca_cert" "$dir/$set.crt" ||
      die "cannot revoke node $code: $dir/$set.crt was not issued by CA" \
        "$province"
  done
  ((found)) || die "cannot revoke node $code: no certificates in $dir"
}

# Checks, before anything is written, that a client certificate can be
# revoked.
check_revocable_client() {
  local role="$1" code="$2" user="$3" province="${2:0:2}0000000000"
  local cert="$out/clients/$role-$code-$user/client.crt"
  local ca_cert="$out/ca/$province/ca.crt"
  [[ -f "$cert" ]] || die "cannot revoke $role $code:$user: no $cert"
  [[ -f "$ca_cert" ]] ||
    die "cannot revoke $role $code:$user: there is no CA $province in $out/ca"
  issued_by "$ca_cert" "$cert" ||
    die "cannot revoke $role $code:$user: $cert was not issued by CA $province"
}

# --- Parse arguments; everything is checked before anything is written. ---

out=""
sign_alg="ecdsa-p256"
force=0
rotate_all=0
node_codes=()
node_names=()
client_roles=()
client_codes=()
client_users=()
rotate_codes=()
revoke_codes=()
revoke_client_roles=()
revoke_client_codes=()
revoke_client_users=()

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
    --rotate)
      # CODE is optional: without it, every --node of this run is rotated.
      if (($# >= 2)) && [[ "$2" != -* ]]; then
        value="$2"
        shift 2
      else
        rotate_all=1
        shift
        continue
      fi
      ;;
    --out=* | --sign-alg=* | --node=* | --operator=* | --auditor=* | \
      --rotate=* | --revoke=* | --revoke-client=*)
      value="${option#*=}"
      option="${option%%=*}"
      shift
      ;;
    --out | --sign-alg | --node | --operator | --auditor | --revoke | \
      --revoke-client)
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
    --rotate) rotate_codes+=("$(normalize_code "$value" --rotate)") ;;
    --revoke) revoke_codes+=("$(normalize_code "$value" --revoke)") ;;
    --revoke-client) add_revoke_client "$value" ;;
  esac
done

[[ -n "$out" ]] || usage_error "--out DIR is required"
if ((rotate_all && ${#node_codes[@]} == 0)); then
  usage_error "--rotate without CODE rotates the --node codes, but there" \
    "are none"
fi
if ((force && (rotate_all + ${#rotate_codes[@]} + ${#revoke_codes[@]} + \
  ${#revoke_client_codes[@]} > 0))); then
  usage_error "--force cannot be combined with --rotate, --revoke or" \
    "--revoke-client"
fi

# Nodes to rotate, each once; a rotated node is also made like --node.
declare -A rotate_pending=()
if ((rotate_all)); then
  for code in "${node_codes[@]}"; do
    rotate_pending[$code]=1
  done
fi
for code in "${rotate_codes[@]}"; do
  if [[ -z "${rotate_pending[$code]:-}" ]]; then
    rotate_pending[$code]=1
    if [[ " ${node_codes[*]} " != *" $code "* ]]; then
      node_codes+=("$code")
      node_names+=("")
    fi
  fi
done

if ((${#node_codes[@]} + ${#client_codes[@]} + ${#revoke_codes[@]} + \
  ${#revoke_client_codes[@]} == 0)); then
  usage_error "nothing to make: give at least one --node, --operator," \
    "--auditor, --rotate, --revoke or --revoke-client"
fi
command -v openssl >/dev/null || die "openssl not found in PATH"

# Rotation and revocation work on what an earlier run made.
for code in "${!rotate_pending[@]}"; do
  [[ -f "$out/nodes/$code/sign.crt" || -f "$out/nodes/$code/tls.crt" ]] ||
    die "cannot rotate node $code: it has no certificates in" \
      "$out/nodes/$code; make it with --node $code first"
done
for code in "${revoke_codes[@]}"; do
  check_revocable_node "$code"
done
for i in "${!revoke_client_codes[@]}"; do
  check_revocable_client "${revoke_client_roles[$i]}" \
    "${revoke_client_codes[$i]}" "${revoke_client_users[$i]}"
done

# --- Prepare the output and work directories. ---

# Everything is private unless made public on purpose: keys are 0600 from
# the moment they are created, certificates are chmod'ed to 0644.
umask 077

work="$(mktemp -d "${TMPDIR:-/tmp}/make-dev-pki.XXXXXX")"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
# openssl ca runs inside the CA directories, so paths must be absolute.
work="$(cd -- "$work" >/dev/null && pwd)"

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

# openssl ca, run inside a CA directory, for revocations and CRLs only:
# certificates are issued with openssl x509. unique_subject = no because a
# rotated node's new certificates have the subjects of the old ones.
cat >"$work/ca.cnf" <<'EOF'
[ca]
default_ca = province_ca
[province_ca]
database = index.txt
certificate = ca.crt
private_key = ca.key
crlnumber = crlnumber
default_md = sha256
unique_subject = no
crl_extensions = crl_ext
[crl_ext]
authorityKeyIdentifier = keyid:always
EOF

(umask 022 && mkdir -p "$out")
out="$(cd -- "$out" >/dev/null && pwd)"
if ((force)); then
  rm -rf -- "$out/ca" "$out/nodes" "$out/clients" "$out/ca-bundle.pem" \
    "$out/crl-bundle.pem"
fi
for sub in ca nodes clients; do
  (umask 022 && mkdir -p "$out/$sub")
done

# --- Revoke, then make the requested certificate sets, then the CRLs. ---

declare -A revoked_now=()
for code in "${revoke_codes[@]}"; do
  [[ -z "${revoked_now[$code]:-}" ]] || continue
  revoked_now[$code]=1
  revoke_node "$code"
done
for i in "${!revoke_client_codes[@]}"; do
  revoke_client "${revoke_client_roles[$i]}" "${revoke_client_codes[$i]}" \
    "${revoke_client_users[$i]}"
done

for i in "${!node_codes[@]}"; do
  code="${node_codes[$i]}"
  if [[ -n "${rotate_pending[$code]:-}" ]]; then
    unset "rotate_pending[$code]"
    make_node "$code" "${node_names[$i]}" 1
  else
    make_node "$code" "${node_names[$i]}" 0
  fi
done
for i in "${!client_codes[@]}"; do
  make_client "${client_roles[$i]}" "${client_codes[$i]}" "${client_users[$i]}"
done
write_bundle
write_crls
