#!/usr/bin/env bash
# Benchmarks gohsm side by side with SoftHSMv2 in one run (cmd/p11bench),
# with a third column, gohsm-pg: gohsm's full library (build/libgohsm-pg.so;
# the default build/libgohsm.so has no PostgreSQL store) with its tokens in
# PostgreSQL (a throwaway server this script starts and stops), prints the table and
# writes it, with the machine's description, into the generated section
# of docs/bench.md.
#
#   scripts/bench.sh [p11bench flags...]     e.g. -duration 1s -ops ecdsa,gcm
#
# Environment:
#   BENCH_DIR=DIR   keep the token directories (and the PostgreSQL cluster)
#                   in DIR and reuse them on the next run (the 10,000 find
#                   objects are made once); the default is a fresh
#                   temporary directory, removed afterwards
#   BENCH_NO_DOC=1  do not touch docs/bench.md
#   BENCH_NO_PG=1   leave the gohsm-pg column out (no PostgreSQL)
#   BENCH_NO_METRICS=1  leave the gohsm-nohook and gohsm-metrics columns out
#   BENCH_NO_PROC=1 leave the whole-process benchmark out (scripts/bench-proc.sh:
#                   pkcs11-tool, openssl with libp11 and p11tool, one process
#                   per sign)
#   BENCH_PROC_RUNS=N  runs of each whole-process command (default 10)
#   BENCH_NO_BIG=1  leave the big-token measurements out (p11bench bigtoken:
#                   fresh processes that log in and find one object on tokens
#                   of up to 10^6 objects, and key generation on them)
#   BENCH_BIG_OBJECTS  comma-separated token sizes (default
#                   0,10000,100000,1000000; key generation compares 0 with
#                   the largest); BENCH_BIG_SOFTHSM the SoftHSM ones (default
#                   1000,10000); BENCH_BIG_RUNS probe runs per size (default 5)
#   BENCH_BIG_DIR   where the big tokens are kept and reused across runs
#                   (default build/bigtoken: built once per machine; at load
#                   12-15 the 10^6-object gohsm token (646 MB) took 17 minutes
#                   and SoftHSM's 10^4 7; later runs take 2-3 minutes)
#   BENCH_PG_FSYNC  the server's fsync setting: off (default; a commit is
#                   written to the kernel, not flushed, as gohsm's SQLite
#                   does with synchronous=normal) or on
#   SOFTHSM_LIB     path of libsofthsm2.so (found through dpkg by default)
#   GOHSM_PG_BIN    PostgreSQL's binaries (default: the newest
#                   /usr/lib/postgresql/*/bin)
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

# Debian's PostgreSQL binaries, for the gohsm-pg column.
pg_bin=
find_pg() {
	if [ -n "${GOHSM_PG_BIN:-}" ]; then
		pg_bin=$GOHSM_PG_BIN
	else
		pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5 -n | tail -n1 || true)
	fi
}
if [ -z "${BENCH_NO_PG:-}" ]; then
	find_pg
	if [ -z "$pg_bin" ] || [ ! -x "$pg_bin/initdb" ]; then
		if [ "$(id -u)" != 0 ]; then
			echo "scripts/bench.sh: PostgreSQL is not installed and this is not root: apt-get install postgresql (or BENCH_NO_PG=1)" >&2
			exit 1
		fi
		echo "scripts/bench.sh: installing postgresql" >&2
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
		find_pg
	fi
	if [ ! -x "$pg_bin/initdb" ] || [ ! -x "$pg_bin/pg_ctl" ]; then
		echo "scripts/bench.sh: no initdb and pg_ctl in '$pg_bin' (set GOHSM_PG_BIN)" >&2
		exit 1
	fi
	case "${BENCH_PG_FSYNC:-off}" in
	on | off) ;;
	*)
		echo "scripts/bench.sh: BENCH_PG_FSYNC=$BENCH_PG_FSYNC: want on or off" >&2
		exit 1
		;;
	esac
fi

# Through make, so that all are built with the project's toolchain.
make lib pglib build/libgohsm-nohook.so build/p11bench

pg_dir=
pg_as=()
pg_ctl_as() { "${pg_as[@]}" "$pg_bin/pg_ctl" "$@"; }
cleanup() {
	if [ -n "$pg_dir" ] && [ -f "$pg_dir/data/postmaster.pid" ]; then
		pg_ctl_as -D "$pg_dir/data" -m fast -w stop >/dev/null || true
	fi
	if [ -z "${BENCH_DIR:-}" ]; then
		rm -rf "$work"
		if [ -n "$pg_dir" ]; then rm -rf "$pg_dir"; fi
	fi
	return 0
}
if [ -n "${BENCH_DIR:-}" ]; then
	work=$BENCH_DIR
	mkdir -p "$work"
else
	work=$(mktemp -d)
fi
trap cleanup EXIT
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
)

# gohsm-pg: the full library (build/libgohsm-pg.so, what a deployment on
# PostgreSQL loads) with both tokens in databases of a throwaway
# PostgreSQL cluster (initdb and pg_ctl as an unprivileged user under root;
# trust authentication, TCP on 127.0.0.1 and a socket in its directory),
# stopped at exit. Another file than gohsm's, so loaded apart (dlopen
# keeps one copy per file): its own Go runtime, configuration and caches.
pg_version=
if [ -n "$pg_bin" ]; then
	pg_user=$(id -un)
	if [ "$(id -u)" = 0 ]; then
		pg_user=postgres
		id -u postgres >/dev/null 2>&1 || pg_user=nobody
		pg_as=(setpriv --reuid="$pg_user" --regid="$(id -g "$pg_user")" --init-groups --)
	fi
	if [ -n "${BENCH_DIR:-}" ]; then
		pg_dir=$work/pg
		chmod a+x "$work"
		mkdir -p "$pg_dir"
	else
		pg_dir=$(mktemp -d /tmp/gohsm-bench-pg.XXXXXX)
	fi
	chmod 755 "$pg_dir"
	if [ "$(id -u)" = 0 ]; then chown "$pg_user" "$pg_dir"; fi
	if [ ! -f "$pg_dir/data/PG_VERSION" ]; then
		"${pg_as[@]}" "$pg_bin/initdb" -D "$pg_dir/data" -U gohsm --auth=trust -E UTF8 --locale=C \
			--no-instructions >"$pg_dir/initdb.log" 2>&1 || {
			cat "$pg_dir/initdb.log" >&2
			exit 1
		}
	fi
	pg_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	pg_ctl_as -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 60 \
		-o "-k $pg_dir -h 127.0.0.1 -p $pg_port -c fsync=${BENCH_PG_FSYNC:-off} -c max_connections=100" start >/dev/null || {
		tail -n 20 "$pg_dir/postgres.log" >&2
		exit 1
	}
	pg_version=$("$pg_bin/postgres" --version)
	for db in p11bench p11bench_find; do
		if ! "${pg_as[@]}" "$pg_bin/psql" -h "$pg_dir" -p "$pg_port" -U gohsm -d postgres -qAt \
			-c "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
			"${pg_as[@]}" "$pg_bin/createdb" -h "$pg_dir" -p "$pg_port" -U gohsm "$db"
		fi
	done
	mkdir -p "$work/gohsm-pg"
	dsn="postgres://gohsm@127.0.0.1:$pg_port"
	printf '%s\n' "token_dir = $work/gohsm-pg" "log_level = warn" \
		"[slot 0]" "label = p11bench" "store = $dsn/p11bench?sslmode=disable" \
		"[slot 1]" "label = p11bench-find" "store = $dsn/p11bench_find?sslmode=disable" >"$work/gohsm-pg.conf"
	args+=(
		-module "gohsm-pg=$root/build/libgohsm-pg.so" -reserved "gohsm-pg=$work/gohsm-pg.conf"
		-so-pin gohsm-pg=admin:p11bench-so -pin gohsm-pg=user:p11bench-user
		-pair gohsm-pg/gohsm=0.95 -pair gohsm-pg/softhsm
	)
fi
# gohsm-nohook and gohsm-metrics (issue 18, docs/metrics.md): the default
# library built with the metrics hook compiled out (-tags
# nopostgres,nometrics), and a copy of
# build/libgohsm.so with `metrics = on`, each on tokens of its own, on the
# operations that use a token key (signing, HMAC, AES-GCM), as ratios to
# gohsm (whose metrics are `auto`, nobody watching: off, the hook's one
# load). What they show: the cost of the hook when off (gohsm-nohook/gohsm
# above 1) and of counting (gohsm-metrics/gohsm below 1).
if [ -z "${BENCH_NO_METRICS:-}" ]; then
	metrics_ops=ecdsa,rsa2048,hmac,aes256-gcm
	for v in nohook metrics; do
		mkdir -p "$work/gohsm-$v"
		printf '%s\n' "token_dir = $work/gohsm-$v" "log_level = warn" "metrics = $([ $v = metrics ] && echo on || echo auto)" \
			"[slot 0]" "label = p11bench" "[slot 1]" "label = p11bench-find" >"$work/gohsm-$v.conf"
		args+=(
			-reserved "gohsm-$v=$work/gohsm-$v.conf" -module-ops "gohsm-$v=$metrics_ops"
			-so-pin gohsm-$v=admin:p11bench-so -pin gohsm-$v=user:p11bench-user -pair gohsm-$v/gohsm
		)
	done
	cp "$root/build/libgohsm-nohook.so" "$work/libgohsm-nohook.so"
	cp "$root/build/libgohsm.so" "$work/libgohsm-metrics.so"
	args+=(-module "gohsm-nohook=$work/libgohsm-nohook.so" -module "gohsm-metrics=$work/libgohsm-metrics.so")
fi
args+=(-json "$root/build/bench.json" "$@")
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
# After p11bench, not beside it: two cores, and each measures the other's load.
proc=
if [ -z "${BENCH_NO_PROC:-}" ]; then
	proc=$work/proc-table.md
	pstart=$(date +%s)
	scripts/bench-proc.sh -runs "${BENCH_PROC_RUNS:-10}" "$proc" >/dev/null || {
		echo "scripts/bench.sh: scripts/bench-proc.sh failed: docs/bench.md left as it was" >&2
		exit 1
	}
	cat "$proc"
	elapsed=$(($(date +%s) - start))
	echo "scripts/bench.sh: bench-proc.sh ran $(($(date +%s) - pstart)) s" >&2
fi
# Big tokens (issue 19, target 2), last: they read and write large files.
big=
if [ -z "${BENCH_NO_BIG:-}" ]; then
	big=$work/big-table.md
	bstart=$(date +%s)
	make -s build/maxrss
	build/p11bench bigtoken -launcher build/maxrss -lib "$root/build/libgohsm.so" -softhsm "$softhsm_lib" \
		-dir "${BENCH_BIG_DIR:-$root/build/bigtoken}" -sizes "${BENCH_BIG_OBJECTS:-0,10000,100000,1000000}" \
		-softhsm-sizes "${BENCH_BIG_SOFTHSM:-1000,10000}" -runs "${BENCH_BIG_RUNS:-5}" >"$big" || {
		echo "scripts/bench.sh: p11bench bigtoken failed: docs/bench.md left as it was" >&2
		exit 1
	}
	cat "$big"
	elapsed=$(($(date +%s) - start))
	echo "scripts/bench.sh: p11bench bigtoken ran $(($(date +%s) - bstart)) s" >&2
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
	if [ -n "$pg_version" ]; then
		echo "- gohsm-pg: the full library (build/libgohsm-pg.so: gohsm's is built without the PostgreSQL store) with both tokens in a PostgreSQL server on this machine ($pg_version, TCP on 127.0.0.1, fsync=${BENCH_PG_FSYNC:-off}), started for the run"
	fi
	if [ -z "${BENCH_NO_METRICS:-}" ]; then
		echo "- gohsm-nohook: the library built with \`-tags nopostgres,nometrics\` (the metrics hook compiled out); gohsm-metrics: a copy of the library with \`metrics = on\`; each with tokens of its own, on $metrics_ops only (docs/metrics.md)"
	fi
	echo "- gohsm: commit $commit"
	echo "- command: \`scripts/bench.sh $*\` (p11bench $(printf '%q ' "${args[@]}" | sed "s|$root/||g; s|$work|\$TMP|g"))"
	echo
	sed "s|$root/||g" "$work/table.md"
	echo
	if [ -n "$proc" ]; then
		echo "### Whole process (scripts/bench-proc.sh)"
		echo
		echo "One client process per sign, gohsm and SoftHSMv2 each on a token of its own with an EC P-256"
		echo "key; gohsm-testkdf is gohsm with its user made under the tests' KDF (argon2id t=1, 64 KiB)"
		echo "instead of the default (t=3, 64 MiB, 2 lanes); gohsm-nocache is gohsm's token with"
		echo "login_cache = off; gohsm-pglib is gohsm's token through the full library (libgohsm-pg.so,"
		echo "with the PostgreSQL store the default libgohsm.so leaves out), for information. Every tool's"
		echo "signature is checked."
		echo
		cat "$proc"
		echo
	fi
	if [ -n "$big" ]; then
		echo "### Big tokens (p11bench bigtoken)"
		echo
		sed "s|$root/||g" "$big"
		echo
	fi
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
