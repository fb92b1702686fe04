#!/usr/bin/env bash
# System packages gridmgr needs from Debian: PostGIS for the local PostgreSQL, Pango and a CJK
# font for the PDF report (and, with
# --browser, Chromium and its driver for the browser tests; with --cluster, Patroni, etcd and
# HAProxy for `gridmgr cluster`). Idempotent; needs root or sudo. Flags may be combined.
set -euo pipefail

want=()
pg_version=$(ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1 || true)
if [ -z "$pg_version" ]; then
  want+=(postgresql postgresql-15-postgis-3)
elif [ ! -f "/usr/share/postgresql/$pg_version/extension/postgis.control" ]; then
  want+=("postgresql-$pg_version-postgis-3")
fi
# The PDF report (gridmgr report): WeasyPrint's Pango, and a CJK font for the Chinese text.
for package in libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk; do
  dpkg -s "$package" >/dev/null 2>&1 || want+=("$package")
done
case " $* " in *" --browser "*) browser=1 ;; *) browser=0 ;; esac
case " $* " in *" --cluster "*) cluster=1 ;; *) cluster=0 ;; esac
if [ "$browser" = 1 ]; then
  command -v chromium >/dev/null || want+=(chromium)
  command -v chromedriver >/dev/null || want+=(chromium-driver)
  # CJK glyphs, so the wall's Chinese labels render in headless screenshots.
  dpkg -s fonts-wqy-microhei >/dev/null 2>&1 || want+=(fonts-wqy-microhei)
fi
if [ "$cluster" = 1 ]; then
  # The highly available layout (docs/deploy.md): Debian's maintained engines, nothing built here.
  for package in patroni etcd-server etcd-client haproxy; do
    dpkg -s "$package" >/dev/null 2>&1 || want+=("$package")
  done
fi
[ ${#want[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "need root to install: ${want[*]}" >&2; exit 1; }
  sudo=sudo
fi
echo "installing system packages: ${want[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${want[@]}"
