#!/usr/bin/env bash
# Install Debian's Chromium for the end-to-end browser tests (idempotent).
# Playwright drives it through executable_path; browser downloads are not possible here.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "chromium is not installed and this is not root: browser tests will be skipped" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium
