#!/usr/bin/env bash
# Install the map wall's front-end assets from the npm registry (package-lock.json pins them)
# and copy the files the page loads into maps/static/vendor/, so the wall needs no other host.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v npm >/dev/null || { echo "npm is needed to install the map wall's assets" >&2; exit 1; }
npm ci --no-audit --no-fund --silent
src=node_modules
dst=maps/static/vendor
rm -rf "$dst"
mkdir -p "$dst/leaflet" "$dst/markercluster" "$dst/heat" "$dst/vectorgrid" "$dst/socketio" "$dst/chartjs" "$dst/exifr"
cp "$src/leaflet/dist/leaflet.js" "$src/leaflet/dist/leaflet.css" "$dst/leaflet/"
cp -r "$src/leaflet/dist/images" "$dst/leaflet/"
cp "$src/leaflet.markercluster/dist/leaflet.markercluster.js" \
   "$src/leaflet.markercluster/dist/MarkerCluster.css" \
   "$src/leaflet.markercluster/dist/MarkerCluster.Default.css" "$dst/markercluster/"
cp "$src/leaflet.heat/dist/leaflet-heat.js" "$dst/heat/"
cp "$src/leaflet.vectorgrid/dist/Leaflet.VectorGrid.bundled.min.js" "$dst/vectorgrid/"
cp "$src/socket.io-client/dist/socket.io.min.js" "$dst/socketio/"
cp "$src/chart.js/dist/chart.umd.min.js" "$dst/chartjs/"
# The phone app reads a photo's GPS position with exifr's smallest build (9 kB compressed).
cp "$src/exifr/dist/mini.esm.mjs" "$dst/exifr/"
# The minified files point at source maps we do not ship; drop the comment so no tool asks.
find "$dst" -name '*.js' -exec sed -i -e '/^\/\/# sourceMappingURL=/d' -e 's#//\# sourceMappingURL=[^ ]*\.map##' {} +
touch "$dst/.installed"
