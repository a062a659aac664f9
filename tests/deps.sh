#!/usr/bin/env bash
# Installs what the test suite needs beyond Go and gcc, from Debian's
# packages: OpenSC's pkcs11-tool and OpenSSL (for cross-checks).
set -euo pipefail
need=()
command -v pkcs11-tool >/dev/null || need+=(opensc)
command -v openssl >/dev/null || need+=(openssl)
command -v gcc >/dev/null || need+=(gcc)
if [ ${#need[@]} -eq 0 ]; then
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
