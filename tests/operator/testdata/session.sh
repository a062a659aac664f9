# An operator's session with CloudHSM CLI over a gohsm token, as the AWS
# CloudHSM user guide documents it: activation, users, quorum keys and
# values, a quorum-approved user, keys, sharing, signing, backup, restore
# into a second token, and the audit log verified on both.
#
# tests/operator (TestOperatorSession) runs this file twice per profile, on
# fresh token directories, with bash -eu and:
#   PATH           cloudhsm-cli and gohsm first
#   GOHSM_CONF     the first token's configuration
#   RESTORED_CONF  the second token's (an empty token directory)
#   OUT            where each step's output goes, for the test to check
# and the working directory for the operator's files (keys, token files).
#
# Each command an operator types is a line below, prefixed by `step NAME`
# (it must succeed) or `refused NAME` (it must fail, exit status non-zero):
# they run the command as it is and keep its standard output in
# $OUT/NAME.json, which the test compares field by field with the shape
# of the command's AWS page.

step() { run_step ok "$@"; }
refused() { run_step refused "$@"; }
run_step() {
	local want=$1 name=$2 rc=0
	shift 2
	echo "$name" >>"$OUT/steps"
	"$@" >"$OUT/$name.json" 2>"$OUT/$name.stderr" || rc=$?
	echo "$rc" >"$OUT/$name.rc"
	if [ "$want" = ok ] && [ "$rc" != 0 ]; then
		echo "session.sh: step $name failed (exit $rc): $*" >&2
		cat "$OUT/$name.json" "$OUT/$name.stderr" >&2
		exit 1
	fi
	if [ "$want" = refused ] && [ "$rc" = 0 ]; then
		echo "session.sh: step $name succeeded, should be refused: $*" >&2
		cat "$OUT/$name.json" >&2
		exit 1
	fi
}

# sign_token FILE APPROVER: an approver signs a quorum token outside the
# HSM and adds the signature to the file, as quorum-auth-chsm-cli-admin
# shows it: decode "token", sign it with openssl (RSA PKCS #1 v1.5,
# SHA-256), base64 the signature.
sign_token() {
	jq -r .token "$1" | base64 -d >"$1.bin"
	local sig
	sig=$(openssl pkeyutl -sign -inkey "$2.key" -pkeyopt digest:sha256 -keyform PEM -in "$1.bin" | base64 -w0)
	jq --arg u "$2" --arg s "$sig" '.signatures += [{"username": $u, "signature": $s}]' "$1" >"$1.new"
	mv "$1.new" "$1"
}

# 1. Activation (cloudhsm_cli-cluster-activate): a new cluster has one
#    unactivated admin; activating sets its password.
step user-list-unactivated cloudhsm-cli user list
step cluster-activate cloudhsm-cli cluster activate --password admin-password

# 2. Users (cloudhsm_cli-user-create): two more admins, enough approvers
#    for a quorum of 2 with one to spare, and two crypto users.
export CLOUDHSM_ROLE=admin CLOUDHSM_PIN=admin:admin-password
step user-create-admin2 cloudhsm-cli user create --username admin2 --role admin --password admin2-password
step user-create-admin3 cloudhsm-cli user create --username admin3 --role admin --password admin3-password
step user-create-alice cloudhsm-cli user create --username alice --role crypto-user --password alice-password
step user-create-bob cloudhsm-cli user create --username bob --role crypto-user --password bob-password

# 3. Quorum keys (quorum-auth-chsm-cli-first-time,
#    cloudhsm_cli-user-chqm-token-reg): each admin makes an RSA-2048 key
#    pair outside the HSM, signs a registration token and registers the
#    public key.
for admin in admin admin2 admin3; do
	openssl genrsa -out $admin.key 2048 2>/dev/null
	openssl rsa -in $admin.key -pubout -out $admin.pub 2>/dev/null
	export CLOUDHSM_PIN=$admin:$admin-password
	step registration-token-$admin cloudhsm-cli quorum token-sign generate --service registration --token $admin.reg
	jq -r '.tokens[0].unsigned' $admin.reg | base64 -d >$admin.reg.bin
	signed=$(openssl pkeyutl -sign -inkey $admin.key -pkeyopt digest:sha256 -keyform PEM -in $admin.reg.bin | base64 -w0)
	jq --arg s "$signed" '.tokens[0].signed = $s' $admin.reg >$admin.reg.signed
	step register-$admin cloudhsm-cli user change-quorum token-sign register --public-key $admin.pub --signed-token $admin.reg.signed
done
step user-list-registered cloudhsm-cli user list

# 4. Quorum values (cloudhsm_cli-qm-token-set-qm, -list-qm): the quorum
#    service to 2 first (the user service's value may not exceed it),
#    then the user service to 2, which now takes two approvals.
export CLOUDHSM_PIN=admin:admin-password
step quorum-values-initial cloudhsm-cli quorum token-sign list-quorum-values
step set-quorum-value-quorum cloudhsm-cli quorum token-sign set-quorum-value --service quorum --value 2
refused set-quorum-value-user-unapproved cloudhsm-cli quorum token-sign set-quorum-value --service user --value 2
step quorum-token cloudhsm-cli quorum token-sign generate --service quorum --token quorum.token
sign_token quorum.token admin2
sign_token quorum.token admin3
step set-quorum-value-user cloudhsm-cli quorum token-sign set-quorum-value --service user --value 2 --approval quorum.token
step quorum-values cloudhsm-cli quorum token-sign list-quorum-values

# 5. A quorum-approved user (quorum-auth-chsm-cli-admin): user create
#    alone is refused; with a user token that two admins signed it runs.
refused user-create-carol-unapproved cloudhsm-cli user create --username carol --role crypto-user --password carol-password
step user-token cloudhsm-cli quorum token-sign generate --service user --token user.token
sign_token user.token admin2
sign_token user.token admin3
step quorum-token-list cloudhsm-cli quorum token-sign list
step user-create-carol cloudhsm-cli user create --username carol --role crypto-user --password carol-password --approval user.token
step user-list cloudhsm-cli user list

# 6. carol in interactive mode (cloudhsm_cli-interactive, cloudhsm_cli-login):
#    login asks for the password (read here from the same input), then
#    an AES key shared with bob at generation, her key list, logout.
unset CLOUDHSM_ROLE CLOUDHSM_PIN
step interactive-carol cloudhsm-cli interactive <<'EOF'
login --username carol --role crypto-user
carol-password
key generate-symmetric aes --label carol-aes --key-length-bytes 16 --share-crypto-users bob
key list
logout
EOF

# 7. Keys (cloudhsm_cli-key-generate-symmetric-aes,
#    cloudhsm_cli-key-generate-asymmetric-pair-ec, cloudhsm_cli-key-share,
#    cloudhsm_cli-key-list): alice makes an AES key and an EC signing pair
#    and shares the private key with bob, who then sees and uses it.
export CLOUDHSM_ROLE=crypto-user CLOUDHSM_PIN=alice:alice-password
step key-generate-aes cloudhsm-cli key generate-symmetric aes --label payments-aes --key-length-bytes 32
step key-generate-ec cloudhsm-cli key generate-asymmetric-pair ec --curve secp256r1 \
	--public-label signing-ec-pub --private-label signing-ec \
	--public-attributes verify=true --private-attributes sign=true
step key-share cloudhsm-cli key share --filter attr.label=signing-ec --username bob --role crypto-user
step key-list-alice cloudhsm-cli key list --verbose
export CLOUDHSM_PIN=bob:bob-password
step key-list-bob cloudhsm-cli key list --verbose
message=$(printf 'pay 100 to carol' | base64 -w0)
step crypto-sign-bob cloudhsm-cli crypto sign ecdsa --key-filter attr.label=signing-ec --hash-function sha256 --data "$message"
signature=$(jq -r .data.signature "$OUT/crypto-sign-bob.json")
export CLOUDHSM_PIN=alice:alice-password
step crypto-verify-alice cloudhsm-cli crypto verify ecdsa --key-filter attr.label=signing-ec-pub --hash-function sha256 \
	--data "$message" --signature "$signature"
# The public key, exported for whoever checks signatures outside the HSM
# (cloudhsm_cli-key-generate-file).
step key-generate-file cloudhsm-cli key generate-file --encoding pem --path signing-ec.pem --filter attr.label=signing-ec-pub

# verify_outside SIGNATURE: OpenSSL checks an ECDSA signature of $message
# with the exported public key. crypto sign ecdsa gives r and s side by
# side (PKCS #11's form); OpenSSL wants them in a DER SEQUENCE.
verify_outside() {
	echo "$1" | base64 -d >sig.raw
	local r s
	r=$(head -c 32 sig.raw | od -An -tx1 | tr -d ' \n')
	s=$(tail -c 32 sig.raw | od -An -tx1 | tr -d ' \n')
	printf 'asn1=SEQUENCE:sig\n[sig]\nr=INTEGER:0x%s\ns=INTEGER:0x%s\n' "$r" "$s" >sig.cnf
	openssl asn1parse -genconf sig.cnf -out sig.der -noout
	echo "$message" | base64 -d >message.bin
	openssl dgst -sha256 -verify signing-ec.pem -signature sig.der message.bin
}
verify_outside "$signature"

# 8. Backup by an officer (docs/backup.md), restore into the second token
#    directory.
step token-backup gohsm --json token backup --out session.gohsm-backup --pin admin:admin-password
step token-restore gohsm --config "$RESTORED_CONF" --json token restore --from session.gohsm-backup

# 9. The restored token: the same users and keys; bob still signs with the
#    key alice shared, and the signature verifies outside the HSM with the
#    public key exported from the original token: the same key pair.
original_conf=$GOHSM_CONF
export GOHSM_CONF=$RESTORED_CONF
step restored-user-list cloudhsm-cli user list
step restored-quorum-values cloudhsm-cli quorum token-sign list-quorum-values
export CLOUDHSM_PIN=alice:alice-password
step restored-key-list-alice cloudhsm-cli key list --verbose
export CLOUDHSM_PIN=bob:bob-password
step restored-key-list-bob cloudhsm-cli key list --verbose
step restored-crypto-sign-bob cloudhsm-cli crypto sign ecdsa --key-filter attr.label=signing-ec --hash-function sha256 --data "$message"
signature=$(jq -r .data.signature "$OUT/restored-crypto-sign-bob.json")
step restored-crypto-verify-bob cloudhsm-cli crypto verify ecdsa --key-filter attr.label=signing-ec-pub --hash-function sha256 \
	--data "$message" --signature "$signature"
verify_outside "$signature"

# 10. The audit log (docs/audit.md): its chain verifies on both tokens;
#     both logs' records, as JSON lines, for the test to read.
step audit-verify-original gohsm --config "$original_conf" --json audit verify
step audit-verify-restored gohsm --config "$RESTORED_CONF" --json audit verify
step audit-show-original gohsm --config "$original_conf" audit show --json
step audit-show-restored gohsm --config "$RESTORED_CONF" audit show --json
