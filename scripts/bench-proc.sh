#!/usr/bin/env bash
# The whole-process benchmark (issue 19, target 4): the time and peak
# memory of one short-lived client process -- pkcs11-tool, openssl pkeyutl
# through libp11's engine, GnuTLS's p11tool -- with gohsm and with
# SoftHSMv2, each on a token of its own holding an EC P-256 key made once.
# This script makes the tokens and keys, checks that every tool's signature
# verifies (openssl against the exported public key; p11tool's
# --test-sign verifies its own), and hands the commands to
# `build/p11bench proc`, which runs them (interleaved, one warm-up each),
# takes wall time and ru_maxrss from wait4 and prints the table.
#
#   scripts/bench-proc.sh [-runs N] [OUT]     OUT: also write the table there
#
# Called by scripts/bench.sh (unless BENCH_NO_PROC=1), which puts the
# table into docs/bench.md's generated section. A third column,
# gohsm-testkdf, is gohsm with its user made under the tests' KDF setting
# (argon2id t=1, 64 KiB, 1 lane) instead of the default (t=3, 64 MiB, 2
# lanes): the difference between the two is what the login's KDF costs.
# gohsm's login cache (login_cache, docs/store.md) is on in both, as a
# user has it: the checks and the warm-up run fill it, so their timed
# logins are cache hits. A fourth column, gohsm-nocache, is gohsm's token
# with login_cache = off: every process derives, as the first login of a
# TTL does. A fifth, gohsm-pglib, is the gohsm token loaded through the
# full library (build/libgohsm-pg.so, with the PostgreSQL store that
# build/libgohsm.so leaves out) on the commands that log in: information,
# no target, so that what the PostgreSQL build costs a one-shot process
# stays in view (docs/bench.md, "The PostgreSQL client's share of a
# one-shot process").
#
# Environment: SOFTHSM_LIB as for scripts/bench.sh; BENCH_PROC_DIR=DIR
# keeps the tokens (and the tools' output, proc.log) in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

runs=10
if [ "${1:-}" = -runs ]; then
	runs=$2
	shift 2
fi
outfile=${1:-}

need() { command -v "$1" >/dev/null || {
	echo "scripts/bench-proc.sh: $1 not found: apt-get install $2 (or BENCH_NO_PROC=1)" >&2
	exit 1
}; }
need pkcs11-tool opensc
need p11tool gnutls-bin
need openssl openssl
need softhsm2-util softhsm2
engine=/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so
[ -f "$engine" ] || {
	echo "scripts/bench-proc.sh: $engine not found: apt-get install libengine-pkcs11-openssl (or BENCH_NO_PROC=1)" >&2
	exit 1
}
softhsm_lib=${SOFTHSM_LIB:-$(dpkg -L libsofthsm2 softhsm2 2>/dev/null | grep '/libsofthsm2\.so$' | head -n1 || true)}
[ -f "$softhsm_lib" ] || {
	echo "scripts/bench-proc.sh: libsofthsm2.so not found (set SOFTHSM_LIB)" >&2
	exit 1
}

make -s lib pglib build/gohsm build/p11bench build/maxrss

if [ -n "${BENCH_PROC_DIR:-}" ]; then
	work=$BENCH_PROC_DIR
	mkdir -p "$work"
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi

label=p11proc
pw=p11proc-user1
so=p11proc-so1

# SoftHSMv2: one token, its key made by pkcs11-tool.
mkdir -p "$work/softhsm"
printf '%s\n' "directories.tokendir = $work/softhsm" "objectstore.backend = file" "log.level = ERROR" \
	"slots.removable = false" >"$work/softhsm2.conf"
if [ -z "$(ls -A "$work/softhsm")" ]; then
	SOFTHSM2_CONF=$work/softhsm2.conf softhsm2-util --init-token --free --label "$label" \
		--so-pin "$so" --pin "$pw" >/dev/null
	SOFTHSM2_CONF=$work/softhsm2.conf pkcs11-tool --module "$softhsm_lib" --token-label "$label" \
		--login --pin "$pw" --keypairgen --key-type EC:prime256v1 --id 01 --label eck >/dev/null
fi

# gohsm, twice: the default KDF, and the tests' KDF (gohsm-testkdf). The
# KDF parameters are the user's, fixed when it is made.
for v in gohsm gohsm-testkdf; do
	mkdir -p "$work/$v/token"
	{
		echo "token_dir = $work/$v/token"
		echo "log_level = warn"
		[ $v = gohsm-testkdf ] && printf '%s\n' "kdf_time = 1" "kdf_memory = 64" "kdf_threads = 1"
		printf '%s\n' "[slot 0]" "label = $label"
	} >"$work/$v/gohsm.conf"
	if [ ! -f "$work/$v/made" ]; then
		g() { GOHSM_CONF=$work/$v/gohsm.conf build/gohsm --config "$work/$v/gohsm.conf" "$@" >/dev/null; }
		g token init --label "$label" --pin "admin:$so"
		g user create --username user --role crypto-user --password "$pw" --pin "admin:$so"
		g key generate ec --curve P-256 --label eck --id 01 --pin "user:$pw"
		touch "$work/$v/made"
	fi
done

# gohsm-nocache: the gohsm token, without the login cache.
mkdir -p "$work/gohsm-nocache"
sed 's/^log_level = warn$/log_level = warn\nlogin_cache = off/' "$work/gohsm/gohsm.conf" >"$work/gohsm-nocache/gohsm.conf"
grep -q '^login_cache = off$' "$work/gohsm-nocache/gohsm.conf"

# A SHA-256 digest's size: what CKM_ECDSA signs.
head -c 32 /dev/urandom >"$work/hash"

spec=$work/spec.tsv
: >"$spec"
for m in gohsm gohsm-nocache gohsm-testkdf gohsm-pglib softhsm; do
	d=$work/$m
	mkdir -p "$d"
	if [ $m = softhsm ]; then
		lib=$softhsm_lib pin=$pw env="SOFTHSM2_CONF=$work/softhsm2.conf"
	elif [ $m = gohsm-pglib ]; then
		# gohsm's token and configuration, the full library.
		lib=$root/build/libgohsm-pg.so pin=user:$pw env="GOHSM_CONF=$work/gohsm/gohsm.conf"
	else
		lib=$root/build/libgohsm.so pin=user:$pw env="GOHSM_CONF=$d/gohsm.conf"
	fi
	printf '%s\n' "openssl_conf = openssl_init" "[openssl_init]" "engines = engine_section" \
		"[engine_section]" "pkcs11 = pkcs11_section" "[pkcs11_section]" "engine_id = pkcs11" \
		"MODULE_PATH = $lib" "init = 0" >"$d/openssl.cnf"
	# The public key, read by pkcs11-tool: what the signatures must verify with.
	env "$env" pkcs11-tool --module "$lib" --token-label "$label" --read-object --type pubkey --id 01 \
		-o "$d/pub.der" >/dev/null 2>&1
	OPENSSL_CONF=/dev/null openssl pkey -pubin -inform DER -in "$d/pub.der" -out "$d/pub.pem"
	uri="pkcs11:token=$label;object=eck;type=private"
	# The commands are run by sh -c: paths quoted for it.
	lib=$(printf %q "$lib") d=$(printf %q "$d")
	hash=$(printf %q "$work/hash") env=$(printf %q "$env")
	sign=(
		"pkcs11-tool login+sign|env $env pkcs11-tool --module $lib --token-label $label --login --pin $pin --sign --mechanism ECDSA --id 01 --signature-format openssl -i $hash -o $d/tool.sig"
		"openssl pkeyutl (libp11) login+sign|env $env OPENSSL_CONF=$d/openssl.cnf openssl pkeyutl -engine pkcs11 -keyform engine -sign -inkey '$uri;pin-value=$pin' -in $hash -out $d/ossl.sig"
		"p11tool --test-sign|env $env GNUTLS_PIN=$pin p11tool --provider $lib --login --test-sign '$uri'"
		"pkcs11-tool -L (no login)|env $env pkcs11-tool --module $lib -L"
	)
	for s in "${sign[@]}"; do
		row=${s%%|*}
		# The no-login row and the test KDF are compared on the commands
		# that differ; gohsm-testkdf, gohsm-nocache and gohsm-pglib run
		# only what logs in.
		[ $m != gohsm ] && [ $m != softhsm ] && [[ $row == *"no login"* ]] && continue
		printf 'cmd\t%s\t%s\t%s\n' "$row" "$m" "${s#*|}" >>"$spec"
	done
done
printf 'target\t%s\t2\t2\n' "pkcs11-tool login+sign" "openssl pkeyutl (libp11) login+sign" "p11tool --test-sign" >>"$spec"
printf 'target\t%s\t1.3\t0\n' "pkcs11-tool -L (no login)" >>"$spec"
printf 'pair\tgohsm\tsofthsm\n' >>"$spec"

# check runs every command of the spec once and verifies what it signed: a
# tool that fails is a failure of the benchmark, not a fast row.
check() {
	local when=$1
	while IFS=$'\t' read -r kind row m c; do
		[ "$kind" = cmd ] || continue
		rm -f "$work/$m/tool.sig" "$work/$m/ossl.sig"
		out=$(sh -c "exec $c" 2>&1) || {
			printf 'scripts/bench-proc.sh: %s, %s failed (%s):\n%s\n' "$row" "$m" "$when" "$out" >&2
			exit 1
		}
		case $row in
		p11tool*)
			grep -q 'Verifying against public key in the token\.\.\. ok' <<<"$out" || {
				printf 'scripts/bench-proc.sh: %s, %s: no verified signature (%s):\n%s\n' "$row" "$m" "$when" "$out" >&2
				exit 1
			}
			;;
		pkcs11-tool*-L*)
			grep -q "token label *: $label" <<<"$out" || {
				printf 'scripts/bench-proc.sh: %s, %s: token not listed (%s):\n%s\n' "$row" "$m" "$when" "$out" >&2
				exit 1
			}
			;;
		*)
			sig=$work/$m/tool.sig
			[[ $row == openssl* ]] && sig=$work/$m/ossl.sig
			OPENSSL_CONF=/dev/null openssl pkeyutl -verify -pubin -inkey "$work/$m/pub.pem" \
				-in "$work/hash" -sigfile "$sig" >/dev/null || {
				echo "scripts/bench-proc.sh: $row, $m: the signature does not verify ($when)" >&2
				exit 1
			}
			;;
		esac
	done <"$spec"
}
check "before the runs"

# The module files are read back from disk by the warm-up run, as an
# installed library is after a reboot, rather than mapped from whatever
# the page cache holds: the folios the kernel made when the linker wrote
# libgohsm.so are larger than a read's, a process maps whole folios, and
# the same file peaked at up to 5.6 MiB more just after `make`
# (docs/bench.md, "Start-up"; `p11bench startup -evict` does the same).
for f in "$root/build/libgohsm.so" "$root/build/libgohsm-pg.so" "$softhsm_lib"; do
	dd if="$f" iflag=nocache count=0 status=none
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
build/p11bench proc -runs "$runs" -launcher build/maxrss -log "$work/proc.log" "$spec" >"$work/proc.md"
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
# The timed runs' last signatures, verified too.
check "after the runs"
{
	cat "$work/proc.md"
	echo
	echo "Load average (1, 5, 15 min) before: $load_before; after: $load_after."
} >"$work/proc-full.md"
cat "$work/proc-full.md"
[ -z "$outfile" ] || cp "$work/proc-full.md" "$outfile"
