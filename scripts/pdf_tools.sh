#!/usr/bin/env bash
# Install pdftoppm (Debian package poppler-utils) if it is missing; the report
# tests render PDF pages with it and skip that check, with the reason, without it.
# Best effort: exits 0 when it is present, 1 when it could not be installed.
set -uo pipefail
if command -v pdftoppm >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "pdf_tools: apt-get not available; install poppler-utils by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
  else
    echo "pdf_tools: not root and no sudo; install poppler-utils by hand" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -qq --no-install-recommends poppler-utils >/dev/null 2>&1; then
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  $SUDO apt-get install -y -qq --no-install-recommends poppler-utils >/dev/null 2>&1 || {
    echo "pdf_tools: could not install poppler-utils" >&2
    exit 1
  }
fi
command -v pdftoppm >/dev/null 2>&1
