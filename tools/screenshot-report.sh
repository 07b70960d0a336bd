#!/usr/bin/env bash
# Renders a `diffegg demo` report to a PNG with headless Chromium (offline), to look at it as a user would.
# Usage: tools/screenshot-report.sh [DEMO_DIR] [OUT.png] [WIDTHxHEIGHT]
# Needs Debian's Chromium: apt-get update && apt-get install -y chromium
set -euo pipefail
dir="${1:-/tmp/demo}"
out="${2:-/tmp/demo.png}"
size="${3:-1400,2000}"
size="${size/x/,}"
index="$(cd "$dir" && pwd)/index.html"
[ -f "$index" ] || { echo "error: $index not found (run: dotnet run --project src/DiffEgg.Cli -c Release -- demo --out $dir)" >&2; exit 1; }
browser="$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)"
[ -n "$browser" ] || { echo "error: chromium not found (apt-get update && apt-get install -y chromium)" >&2; exit 1; }
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" --hide-scrollbars \
  --screenshot="$out" --window-size="$size" "file://$index" 2>/dev/null
[ -f "$out" ] || { echo "error: no screenshot written to $out" >&2; exit 1; }
echo "screenshot: $out"
