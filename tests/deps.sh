#!/usr/bin/env bash
# Installs what the test suite needs beyond Go and gcc, from Debian's
# packages: OpenSC's pkcs11-tool and OpenSSL (for cross-checks), real
# clients, PostgreSQL; then tests/noble's pinned npm packages.
set -euo pipefail
cd "$(dirname "$0")/.."
# tests/noble: @noble/post-quantum, the independent ML-DSA / HashML-DSA
# implementation the module is checked against, exactly as
# tests/noble/package-lock.json pins it (npm ci: the lock's versions and
# integrity hashes, no install scripts). Needs node >= 20.19 (its engines).
noble() {
	local want
	want=$(sed -n 's/.*"@noble\/post-quantum": *"\([^"]*\)".*/\1/p' tests/noble/package.json)
	if grep -qs "\"version\": \"$want\"" tests/noble/node_modules/@noble/post-quantum/package.json; then
		return 0
	fi
	echo "tests/deps.sh: npm ci in tests/noble (@noble/post-quantum $want)"
	(cd tests/noble && npm ci --ignore-scripts --no-audit --no-fund)
}
need=()
command -v pkcs11-tool >/dev/null || need+=(opensc)
command -v openssl >/dev/null || need+=(openssl)
# jq: tests/operator's operator session edits quorum token files with it, as
# the AWS pages do.
command -v jq >/dev/null || need+=(jq)
# libcrypto.so.3: the module's RSA and P-256 private operations (internal/ossl).
ldconfig -p | grep -q 'libcrypto\.so\.3 ' || need+=(libssl3)
command -v gcc >/dev/null || need+=(gcc)
# Real clients (tests/clients: GnuTLS, OpenSSL 3's libp11 engine, p11-kit).
command -v p11tool >/dev/null && command -v certtool >/dev/null || need+=(gnutls-bin)
test -e /usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so || need+=(libengine-pkcs11-openssl)
command -v p11-kit >/dev/null || need+=(p11-kit)
test -e /usr/lib/x86_64-linux-gnu/pkcs11/p11-kit-client.so || need+=(p11-kit-modules)
# Java 17 SunPKCS11 and NSS clients (tests/clients/java_test.go, nss_test.go):
# javac compiles the Java driver at test time (keytool and java come with it);
# modutil and certutil are NSS's tools.
command -v javac >/dev/null && command -v keytool >/dev/null || need+=(openjdk-17-jdk-headless)
command -v modutil >/dev/null && command -v certutil >/dev/null || need+=(libnss3-tools)
# nginx TLS offload (tests/nginx): nginx, in /usr/sbin, which a non-root
# PATH may lack (it also needs libengine-pkcs11-openssl, listed above).
command -v nginx >/dev/null || test -x /usr/sbin/nginx || need+=(nginx)
# gdb: tests/fork prints every thread's backtrace of a child that hangs
# before killing it (TestForkHangReport checks that it does).
command -v gdb >/dev/null || need+=(gdb)
# PostgreSQL's binaries (initdb, postgres) for the PostgreSQL token store's
# tests: internal/testenv/pgtest runs its own throwaway server as an
# unprivileged user; a system cluster the package may start goes unused.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
# Chromium, headless: tests/console drives the console's web UI in it
# (chromedp over the DevTools protocol; Debian's build, no download).
command -v chromium >/dev/null || need+=(chromium)
# node and npm: tests/noble (Debian's nodejs package carries npm on
# NodeSource builds, Debian's own splits it out).
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -eq 0 ]; then
	noble
	exit 0
fi
if [ "$(id -u)" != 0 ]; then
	echo "tests/deps.sh: missing ${need[*]}; run as root or: sudo apt-get install ${need[*]}" >&2
	exit 1
fi
echo "tests/deps.sh: installing ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" </dev/null
noble
