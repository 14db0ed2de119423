#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# test_sign_01: module signing for Secure Boot machines, as the admin guide
# ("Installing: DKMS and Secure Boot") tells: a key and certificate made
# with openssl (Documentation/admin-guide/module-signing.rst's x509.genkey,
# the certificate in DER as mokutil --import wants it), the module signed
# with the kernel's scripts/sign-file, the signature read back with modinfo.
#
# The tree's module is unsigned (distribution headers carry no signing key)
# and shows no signature fields; a signed copy is the module with a
# signature appended, and modinfo names the certificate's CN as signer, its
# serial as sig_key and the kernel's CONFIG_MODULE_SIG_HASH as sig_hashalgo.
# A copy signed with a second key shows that key's serial, not the first's.
# Nothing is loaded: test_dkms_01 loads a module DKMS signed.

. "$(dirname "$0")/common.sh"

require_cmd modinfo openssl cmp

REL=$(uname -r)
KO=$DMSTREAM_KO

[[ -f $KO ]] || ktap_skip_all "no module at $KO"

# The running kernel's sign-file: its headers', or Debian's linux-kbuild one.
SIGN_FILE=
for f in "/usr/src/linux-headers-$REL/scripts/sign-file" \
	"/lib/modules/$REL/build/scripts/sign-file" \
	"/usr/lib/linux-kbuild-${REL%.*}/scripts/sign-file" \
	"/usr/lib/linux-kbuild-${REL%-*}/scripts/sign-file"; do
	[[ -x $f ]] && { SIGN_FILE=$f; break; }
done
[[ -n $SIGN_FILE ]] || ktap_skip_all "no sign-file for $REL (kernel headers)"

HASH=sha256
for c in "/usr/src/linux-headers-$REL/.config" "/lib/modules/$REL/build/.config"; do
	[[ -f $c ]] || continue
	h=$(sed -n 's/^CONFIG_MODULE_SIG_HASH="\(.*\)"$/\1/p' "$c")
	HASH=${h:-$HASH}
	break
done

MAGIC='~Module signature appended~'

# same A B: A is not empty and equals B.
same()
{
	[[ -n $1 && $1 == "$2" ]]
}

# make_key NAME CN: $TEST_TMP/NAME.priv (PEM) and NAME.der (DER), as in
# module-signing.rst.
make_key()
{
	local cfg=$TEST_TMP/$1.genkey

	printf '%s\n' '[ req ]' 'default_bits = 2048' \
		'distinguished_name = req_distinguished_name' 'prompt = no' \
		'string_mask = utf8only' 'x509_extensions = myexts' \
		'[ req_distinguished_name ]' "CN = $2" \
		'[ myexts ]' 'basicConstraints=critical,CA:FALSE' \
		'keyUsage=digitalSignature' 'subjectKeyIdentifier=hash' \
		'authorityKeyIdentifier=keyid' >"$cfg"
	openssl req -new -nodes -utf8 -sha256 -days 36500 -batch -x509 \
		-config "$cfg" -keyout "$TEST_TMP/$1.priv" \
		-outform DER -out "$TEST_TMP/$1.der" 2>&1
}

# cert_serial NAME: the serial as modinfo prints sig_key (XX:XX:...).
cert_serial()
{
	local s

	s=$(openssl x509 -inform DER -in "$TEST_TMP/$1.der" -noout -serial) || return 1
	s=${s#serial=}
	# openssl drops a leading zero nibble; modinfo prints whole bytes.
	(( ${#s} % 2 )) && s=0$s
	sed 's/../&:/g; s/:$//' <<<"$s"
}

# has_trailer FILE: FILE ends with the module signature magic.
has_trailer()
{
	tail -c $((${#MAGIC} + 1)) "$1" | cmp -s - <(printf '%s\n' "$MAGIC")
}

ktap_plan 8
ktap_diag "sign-file: $SIGN_FILE, hash: $HASH"

f=$(modinfo -F signer "$KO")$(modinfo -F sig_key "$KO")$(modinfo -F sig_id "$KO")
if [[ -z $f ]] && ! has_trailer "$KO"; then
	ktap_ok "the tree's module is unsigned (no signer, sig_key, sig_id)"
else
	ktap_fail "the tree's module is unsigned (no signer, sig_key, sig_id)" \
		"modinfo: $(modinfo "$KO" | grep -E '^sig|^signer')"
fi

ktap_check "make a key and certificate (openssl req -x509)" make_key mok "dm-stream test MOK" ||
	ktap_bail "openssl could not make a key"
SERIAL=$(cert_serial mok)

cp "$KO" "$TEST_TMP/signed.ko"
ktap_check "sign-file $HASH signs a copy of the module" \
	"$SIGN_FILE" "$HASH" "$TEST_TMP/mok.priv" "$TEST_TMP/mok.der" "$TEST_TMP/signed.ko" ||
	ktap_bail "sign-file failed"

size=$(stat -c %s "$KO")
if has_trailer "$TEST_TMP/signed.ko" &&
   [[ $(stat -c %s "$TEST_TMP/signed.ko") -gt $size ]] &&
   cmp -s -n "$size" "$KO" "$TEST_TMP/signed.ko"; then
	ktap_ok "the signed copy is the module with a signature appended"
else
	ktap_fail "the signed copy is the module with a signature appended" \
		"size $size -> $(stat -c %s "$TEST_TMP/signed.ko"), trailer: $(tail -c 28 "$TEST_TMP/signed.ko" | tr -c '[:print:]' .)"
fi

ktap_check "modinfo signer is the certificate's CN" \
	same "$(modinfo -F signer "$TEST_TMP/signed.ko")" "dm-stream test MOK"
ktap_check "modinfo sig_key is the certificate's serial ($SERIAL)" \
	same "$(modinfo -F sig_key "$TEST_TMP/signed.ko")" "$SERIAL"
ktap_check "modinfo sig_hashalgo is $HASH, sig_id PKCS#7" \
	same "$(modinfo -F sig_hashalgo "$TEST_TMP/signed.ko") $(modinfo -F sig_id "$TEST_TMP/signed.ko")" \
	"$HASH PKCS#7"

# Another key: modinfo tells the two apart.
cp "$KO" "$TEST_TMP/other.ko"
if make_key other "dm-stream other key" >"$TEST_TMP/other.log" &&
   "$SIGN_FILE" "$HASH" "$TEST_TMP/other.priv" "$TEST_TMP/other.der" "$TEST_TMP/other.ko"; then
	other=$(modinfo -F sig_key "$TEST_TMP/other.ko")
	if same "$other" "$(cert_serial other)" && [[ $other != "$SERIAL" ]]; then
		ktap_ok "a copy signed with another key shows that key's serial"
	else
		ktap_fail "a copy signed with another key shows that key's serial" \
			"sig_key $other, first key $SERIAL, other $(cert_serial other)"
	fi
else
	ktap_fail "a copy signed with another key shows that key's serial" \
		"$(cat "$TEST_TMP/other.log")"
fi

ktap_finish
