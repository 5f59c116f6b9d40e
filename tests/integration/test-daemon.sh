#!/bin/sh
# Copyright (c) 2026 The keycustody authors. SPDX-License-Identifier: ISC
#
# test-daemon.sh: the daemon and keycustodyctl against a fresh SoftHSM2 token: CSRs for
# every key type verify and carry the subject and SANs asked for, are signed by a key that
# the token holds as sensitive, never extractable and sign-only; pagination; delete removes
# both objects; records survive a restart; validation errors come back with their codes.
# KC_SIGNER=engine runs the same checks with libp11's engine as the signer.

. "$(dirname "$0")/common.sh"
kc_setup

# csr_check NAME JSONFILE: the CSR verifies, subject order, SANs, key in the token.
csr_check() {
	name=$1 f=$2
	id=$(jget .id <"$f")
	jget .csr <"$f" >"$KC_TMP/$name.csr"
	check "$name: openssl req -verify" openssl req -in "$KC_TMP/$name.csr" -noout -verify
	subj=$(openssl req -in "$KC_TMP/$name.csr" -noout -subject -nameopt oneline,-esc_msb)
	check_eq "$name: subject C, ST, L, O, CN in order" \
	    "subject=C = US, ST = MA, L = Boston, O = City of Boston, CN = shop.acme-corp.co.uk" \
	    "$subj"
	sans=$(openssl req -in "$KC_TMP/$name.csr" -noout -text | grep -o 'DNS:[^,]*' |
	    tr '\n' ' ')
	check_eq "$name: SANs as DNS names" "DNS:shop.acme-corp.co.uk DNS:www.acme-corp.co.uk " \
	    "$sans"
	sigalg=$(openssl req -in "$KC_TMP/$name.csr" -noout -text |
	    sed -n 's/^ *Signature Algorithm: //p' | head -1)
	case $name in
	p256*|p384*) check_eq "$name: ECDSA with SHA-256" ecdsa-with-SHA256 "$sigalg" ;;
	*) check_eq "$name: RSA with SHA-256" sha256WithRSAEncryption "$sigalg" ;;
	esac
	# The public key in the token is the CSR's key.
	openssl req -in "$KC_TMP/$name.csr" -noout -pubkey >"$KC_TMP/$name.csr.pub"
	p11tool --read-object --type pubkey --label "keycustody:$id" \
	    -o "$KC_TMP/$name.tok.der" >/dev/null 2>&1
	openssl pkey -pubin -inform DER -in "$KC_TMP/$name.tok.der" \
	    -out "$KC_TMP/$name.tok.pub" 2>/dev/null
	check "$name: CSR key is the token's key" cmp "$KC_TMP/$name.csr.pub" "$KC_TMP/$name.tok.pub"
	# The private key: sensitive, never extractable, sign-only, value unreadable.
	p11tool --list-objects --type privkey --label "keycustody:$id" >"$KC_TMP/$name.attrs" 2>&1
	check "$name: private key sensitive, always sensitive, never extractable, local" \
	    grep -q 'Access:.*sensitive, always sensitive, never extractable, local' \
	    "$KC_TMP/$name.attrs"
	usage=$(sed -n 's/^ *Usage: *//p' "$KC_TMP/$name.attrs" | head -1)
	check_eq "$name: private key usage is sign only" "sign" "$usage"
	"$top_builddir/tests/integration/p11-probe" "$KC_MODULE" "$KC_LABEL" "$KC_TMP/pin" \
	    "keycustody:$id" >"$KC_TMP/$name.probe" 2>&1
	check_eq "$name: reading the private key's secret values fails" 0 "$?"
}

for kt in p256v1 rsa2048; do
	if kc_csr $kt shop.acme-corp.co.uk shop.acme-corp.co.uk www.acme-corp.co.uk \
	    >"$KC_TMP/$kt.json" 2>"$KC_TMP/$kt.err"; then
		ok "$kt: csr create"
		check_eq "$kt: key_type echoed" "$kt" "$(jget .key_type <"$KC_TMP/$kt.json")"
		check_eq "$kt: zone_id not in the object" "null" \
		    "$(jget .zone_id <"$KC_TMP/$kt.json")"
		csr_check $kt "$KC_TMP/$kt.json"
	else
		not_ok "$kt: csr create: $(cat "$KC_TMP/$kt.err" "$KC_TMP/$kt.json")"
	fi
done

# The other key types: CSR verifies and has the right key size.
for kt in p384v1 rsa3072 rsa4096; do
	if kc_csr $kt shop.acme-corp.co.uk shop.acme-corp.co.uk >"$KC_TMP/$kt.json" 2>&1; then
		jget .csr <"$KC_TMP/$kt.json" >"$KC_TMP/$kt.csr"
		check "$kt: openssl req -verify" openssl req -in "$KC_TMP/$kt.csr" -noout -verify
		bits=$(openssl req -in "$KC_TMP/$kt.csr" -noout -text |
		    sed -n 's/.*Public-Key: (\([0-9]*\) bit).*/\1/p')
		case $kt in p384v1) want=384 ;; rsa3072) want=3072 ;; rsa4096) want=4096 ;; esac
		check_eq "$kt: key size" "$want" "$bits"
	else
		not_ok "$kt: csr create: $(cat "$KC_TMP/$kt.json")"
	fi
done

# Optional OU is placed between O and CN.
ctl --json csr create --zone $KC_ZONE --country us --state MA --locality Boston \
    --organization 'City of Boston' --organizational-unit 'Parade Detail' \
    --common-name app.acme-corp.co.uk --san app.acme-corp.co.uk --key-type p256v1 \
    >"$KC_TMP/ou.json" 2>&1
jget .csr <"$KC_TMP/ou.json" >"$KC_TMP/ou.csr"
check_eq "OU between O and CN, the subject's country upper-case" \
    "subject=C = US, ST = MA, L = Boston, O = City of Boston, OU = Parade Detail, CN = app.acme-corp.co.uk" \
    "$(openssl req -in "$KC_TMP/ou.csr" -noout -subject -nameopt oneline,-esc_msb)"
# The object echoes the country as it was sent (issue 13: Terraform re-reads it).
check_eq "country as sent in the object" us "$(jget .country <"$KC_TMP/ou.json")"

# Validation errors: exit status 1, the API code and message.
out=$(ctl csr create --zone $KC_ZONE --country USA --state MA --locality Boston \
    --organization O --common-name a.acme-corp.co.uk --san a.acme-corp.co.uk 2>&1)
check_eq "bad country: exit 1" 1 "$?"
case $out in *"error 1405"*"Country field is required."*) ok "bad country: 1405" ;;
*) not_ok "bad country: 1405: $out" ;; esac
out=$(ctl --json csr create --zone $KC_ZONE --country US --state MA --locality Boston \
    --organization O --common-name a.acme-corp.co.uk --san www.example.com 2>&1)
check_eq "example.com SAN: code 1416" 1416 "$(printf '%s' "$out" | jget '.errors[0].code')"
out=$(ctl --json csr create --zone $KC_ZONE --country US --state MA --locality Boston \
    --organization O --common-name a.acme-corp.co.uk --san a.acme-corp.co.uk \
    --key-type dsa1024 2>&1)
check_eq "unknown key type: code 1417" 1417 "$(printf '%s' "$out" | jget '.errors[0].code')"
nkeys=$(p11tool --list-objects --type privkey 2>/dev/null | grep -c 'label: *keycustody:')
check_eq "refused requests left no key in the token" 6 "$nkeys"

# Get, and another zone's id is "not found".
id=$(jget .id <"$KC_TMP/p256v1.json")
check_eq "get returns the CSR" "$id" "$(ctl --json csr get --zone $KC_ZONE "$id" | jget .id)"
out=$(ctl --json csr get --zone $KC_ZONE2 "$id" 2>&1)
check_eq "get from another zone: 1419" 1419 "$(printf '%s' "$out" | jget '.errors[0].code')"
out=$(ctl --json csr get --zone $KC_ZONE not-a-uuid 2>&1)
check_eq "get with a malformed id: 1418" 1418 "$(printf '%s' "$out" | jget '.errors[0].code')"

# Pagination over 23 CSRs in a zone of their own.
KC_CSR_ZONE=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa
export KC_CSR_ZONE
i=0
while [ $i -lt 23 ]; do
	kc_csr p256v1 "n$i.acme-corp.co.uk" "n$i.acme-corp.co.uk" >/dev/null 2>&1 || break
	i=$((i + 1))
done
check_eq "23 CSRs created" 23 $i
unset KC_CSR_ZONE
seen=""
for p in 1 2 3 4 5; do
	ctl --json csr list --zone aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa --page $p --per-page 5 \
	    >"$KC_TMP/page$p.json"
	seen="$seen $(jget '.[].common_name' <"$KC_TMP/page$p.json" | tr '\n' ' ')"
done
n=$(echo $seen | wc -w)
check_eq "5 pages of 5 list 23 CSRs" 23 "$n"
check_eq "listed in creation order" "n0.acme-corp.co.uk" "$(echo $seen | cut -d' ' -f1)"
check_eq "last one last" "n22.acme-corp.co.uk" "$(echo $seen | cut -d' ' -f23)"
check_eq "page past the end is empty" 0 "$(ctl --json csr list --zone \
    aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa --page 9 --per-page 5 | jget length)"
out=$(ctl --json csr list --zone $KC_ZONE --per-page 4 2>&1)
check_eq "per_page 4 refused: 6008" 6008 "$(printf '%s' "$out" | jget '.errors[0].code')"

# Records survive a restart.
kc_stop_daemon
kc_start_daemon || not_ok "restart"
check_eq "CSR survives a restart" "$id" "$(ctl --json csr get --zone $KC_ZONE "$id" | jget .id)"
check_eq "list total survives a restart" 23 "$(ctl csr list --zone \
    aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa | sed -n 's/.* \([0-9]*\) in all/\1/p')"

# Delete removes both key objects, then the record.
check "delete" ctl csr delete --zone $KC_ZONE "$id"
n=$(p11tool --list-objects 2>/dev/null | grep -c "label: *keycustody:$id\$")
check_eq "both key objects gone from the token" 0 "$n"
out=$(ctl --json csr get --zone $KC_ZONE "$id" 2>&1)
check_eq "deleted CSR is not found" 1419 "$(printf '%s' "$out" | jget '.errors[0].code')"
out=$(ctl --json csr delete --zone $KC_ZONE "$id" 2>&1)
check_eq "deleting twice: 1419" 1419 "$(printf '%s' "$out" | jget '.errors[0].code')"

# The interop proof: openssl with libp11's engine signs with a key made by the daemon.
id2=$(jget .id <"$KC_TMP/rsa2048.json")
uri=$(ctl csr get --zone $KC_ZONE "$id2" | sed -n 's/^key_uri: *//p')
case $uri in "pkcs11:token=$KC_LABEL;id=%"*";type=private") ok "key URI: $uri" ;;
*) not_ok "key URI: $uri" ;; esac
check_eq "csr get --json: the same key_uri" "$uri" \
    "$(ctl --json csr get --zone $KC_ZONE "$id2" | jget .key_uri)"
check_eq "csr get --json: key_id is the URI's id" \
    "$(printf '%s' "$uri" | sed 's/.*;id=\([^;]*\);.*/\1/; s/%//g')" \
    "$(ctl --json csr get --zone $KC_ZONE "$id2" | jget .key_id)"
check_eq "csr get: the module's URI, the same id in token keycustody (issue 16)" \
    "pkcs11:token=keycustody;id=$(printf '%s' "$uri" | sed 's/.*;id=\([^;]*\);.*/\1/');type=private" \
    "$(ctl csr get --zone $KC_ZONE "$id2" | sed -n 's/^module_key_uri: *//p')"
check_eq "csr get --json: the same module_key_uri" \
    "$(ctl csr get --zone $KC_ZONE "$id2" | sed -n 's/^module_key_uri: *//p')" \
    "$(ctl --json csr get --zone $KC_ZONE "$id2" | jget .module_key_uri)"
if OPENSSL_CONF=/dev/null PKCS11_MODULE_PATH="$KC_MODULE" openssl req -new \
    -engine pkcs11 -keyform engine -key "$uri;pin-value=$KC_PIN" \
    -subj "/CN=interop.acme-corp.co.uk" -out "$KC_TMP/interop.csr" >"$KC_TMP/interop.log" 2>&1 &&
    openssl req -in "$KC_TMP/interop.csr" -noout -verify >/dev/null 2>&1; then
	ok "openssl req -engine pkcs11 signs with the daemon's key"
else
	not_ok "openssl req -engine pkcs11: $(cat "$KC_TMP/interop.log")"
fi

# The command of the README and issue 2, with --json after the command's flags.
ctl csr create --zone $KC_ZONE --country US --state MA --locality Boston \
    --organization 'City of Boston' --common-name shop.acme-corp.co.uk \
    --san shop.acme-corp.co.uk --san www.acme-corp.co.uk --key-type p256v1 --json \
    >"$KC_TMP/readme.json" 2>&1
jget .csr <"$KC_TMP/readme.json" >"$KC_TMP/readme.csr"
check "--json after the flags: the CSR verifies" openssl req -in "$KC_TMP/readme.csr" -noout -verify

# Health.
check_eq "health says ok" ok "$(ctl --json health | jget .status)"

kc_done
