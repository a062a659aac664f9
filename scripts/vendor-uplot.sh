#!/usr/bin/env bash
# Fetches uPlot (the console's chart library, MIT) from the npm registry,
# checks the tarball against the sha256 recorded here, and copies the
# three files the console embeds into internal/console/web/vendor/uplot/.
# The files are checked in: the build never runs npm. Run this only to
# move to another version (update VERSION and SHA256 together).
#
#   scripts/vendor-uplot.sh
set -euo pipefail
VERSION=1.6.32
SHA256=4b8a8191e425658e3ea8c8c1314b0fc679c861ee3a1af2b20c7b16ba50b5133d

root=$(cd "$(dirname "$0")/.." && pwd)
dest=$root/internal/console/web/vendor/uplot
command -v npm >/dev/null || { echo "vendor-uplot: npm is needed (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "uplot@$VERSION" >/dev/null)
tgz=$tmp/uplot-$VERSION.tgz
got=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$SHA256" ]; then
	echo "vendor-uplot: uplot-$VERSION.tgz has sha256 $got, want $SHA256" >&2
	exit 1
fi
tar -xzf "$tgz" -C "$tmp"
mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.iife.min.js" "$tmp/package/dist/uPlot.min.css" \
	"$tmp/package/LICENSE" "$dest/"
echo "vendor-uplot: uPlot $VERSION (sha256 $SHA256) in ${dest#$root/}"
