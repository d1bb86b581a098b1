#!/usr/bin/env bash
# Copy the front-end libraries from the npm registry into static/vendor (committed, served locally).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
cp package.json "$tmp/"
(cd "$tmp" && npm install --silent --no-audit --no-fund)
rm -rf static/vendor && mkdir -p static/vendor/leaflet static/vendor/chartjs static/vendor/openseadragon
cp "$tmp"/node_modules/leaflet/dist/leaflet.js "$tmp"/node_modules/leaflet/dist/leaflet.css static/vendor/leaflet/
cp -r "$tmp"/node_modules/leaflet/dist/images static/vendor/leaflet/
cp "$tmp"/node_modules/leaflet/LICENSE static/vendor/leaflet/
cp "$tmp"/node_modules/chart.js/dist/chart.umd.min.js "$tmp"/node_modules/chart.js/LICENSE.md static/vendor/chartjs/
cp "$tmp"/node_modules/openseadragon/build/openseadragon/openseadragon.min.js static/vendor/openseadragon/
cp -r "$tmp"/node_modules/openseadragon/build/openseadragon/images static/vendor/openseadragon/
cp "$tmp"/node_modules/openseadragon/LICENSE.txt static/vendor/openseadragon/ 2>/dev/null || true
rm -rf "$tmp"
echo "static/vendor updated"
