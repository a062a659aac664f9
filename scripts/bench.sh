#!/usr/bin/env bash
# Benchmarks gohsm side by side with SoftHSMv2 in one run (cmd/p11bench),
# prints the table and writes it, with the machine's description, into the
# generated section of docs/bench.md.
#
#   scripts/bench.sh [p11bench flags...]     e.g. -duration 1s -ops ecdsa,gcm
#
# Environment:
#   BENCH_DIR=DIR   keep the token directories in DIR and reuse them on the
#                   next run (the 10,000 find objects are made once); the
#                   default is a fresh temporary directory, removed afterwards
#   BENCH_NO_DOC=1  do not touch docs/bench.md
#   SOFTHSM_LIB     path of libsofthsm2.so (found through dpkg by default)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

if ! dpkg -s softhsm2 >/dev/null 2>&1; then
	if [ "$(id -u)" != 0 ]; then
		echo "scripts/bench.sh: softhsm2 is not installed and this is not root: apt-get install softhsm2" >&2
		exit 1
	fi
	echo "scripts/bench.sh: installing softhsm2" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >/dev/null
fi
softhsm_lib=${SOFTHSM_LIB:-$(dpkg -L libsofthsm2 softhsm2 2>/dev/null | grep '/libsofthsm2\.so$' | head -n1 || true)}
if [ -z "$softhsm_lib" ] || [ ! -f "$softhsm_lib" ]; then
	echo "scripts/bench.sh: libsofthsm2.so not found (set SOFTHSM_LIB)" >&2
	exit 1
fi

# Through make, so that both are built with the project's toolchain.
make lib build/p11bench

if [ -n "${BENCH_DIR:-}" ]; then
	work=$BENCH_DIR
	mkdir -p "$work"
else
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work/softhsm" "$work/gohsm"
cat >"$work/softhsm2.conf" <<EOF
directories.tokendir = $work/softhsm
objectstore.backend = file
log.level = ERROR
slots.removable = false
EOF
# The default KDF cost: it only affects login. Two slots: the main token
# and the token holding the find objects.
cat >"$work/gohsm.conf" <<EOF
token_dir = $work/gohsm
log_level = warn
[slot 0]
label = p11bench
[slot 1]
label = p11bench-find
EOF
export SOFTHSM2_CONF=$work/softhsm2.conf GOHSM_CONF=$work/gohsm.conf

args=(
	-module "gohsm=$root/build/libgohsm.so" -so-pin gohsm=admin:p11bench-so -pin gohsm=user:p11bench-user
	-module "softhsm=$softhsm_lib" -so-pin softhsm=p11bench-so -pin softhsm=p11bench-user
	-json "$root/build/bench.json"
	"$@"
)
echo "scripts/bench.sh: build/p11bench ${args[*]}" >&2
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
start=$(date +%s)
status=0
build/p11bench "${args[@]}" >"$work/table.md" || status=$?
cat "$work/table.md"
elapsed=$(($(date +%s) - start))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
echo "scripts/bench.sh: p11bench ran ${elapsed} s, exit status $status" >&2
if [ "$status" != 0 ]; then
	echo "scripts/bench.sh: p11bench failed: docs/bench.md left as it was" >&2
	exit "$status"
fi
[ -n "${BENCH_NO_DOC:-}" ] && exit 0

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
# docs/bench.md itself does not count: this script rewrites it.
if [ -n "$(git status --porcelain --untracked-files=no -- . ':!docs/bench.md' 2>/dev/null)" ]; then
	commit="$commit (with uncommitted changes)"
fi
gen=$work/generated.md
{
	echo
	echo "Run of $(date -u '+%Y-%m-%d %H:%M UTC'), ${elapsed} s in all."
	echo
	echo "- machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name:[[:space:]]*//p' | head -n1), $(free -g | awk '/^Mem:/ {print $2}') GiB"
	echo "- load average (1, 5, 15 min) before: $load_before; after: $load_after (other work on the machine skews both modules' numbers)"
	echo "- kernel: $(uname -sr)"
	echo "- Go: libgohsm.so built with $(go version build/libgohsm.so | awk '{print $2}'), p11bench with $(go version build/p11bench | awk '{print $2}')"
	echo "- SoftHSM: softhsm2 $(dpkg -s softhsm2 | sed -n 's/^Version: //p') (\`$softhsm_lib\`)"
	echo "- gohsm: commit $commit"
	echo "- command: \`scripts/bench.sh $*\` (p11bench $(printf '%q ' "${args[@]}" | sed "s|$root/||g; s|$work|\$TMP|g"))"
	echo
	sed "s|$root/||g" "$work/table.md"
	echo
} >"$gen"

doc=docs/bench.md
begin='<!-- BEGIN GENERATED RESULTS (scripts/bench.sh) -->'
end='<!-- END GENERATED RESULTS -->'
if ! grep -qF "$begin" "$doc" || ! grep -qF "$end" "$doc"; then
	echo "scripts/bench.sh: $doc lacks the generated-section markers" >&2
	exit 1
fi
awk -v begin="$begin" -v end="$end" -v gen="$gen" '
	$0 == begin { print; while ((getline line < gen) > 0) print line; skip = 1; next }
	$0 == end { skip = 0 }
	!skip { print }
' "$doc" >"$work/bench.md"
cp "$work/bench.md" "$doc"
echo "scripts/bench.sh: results written to $doc and build/bench.json" >&2
