#!/usr/bin/env bash
# Create (or update) the project's virtual environment in .venv and install
# the pinned requirements. Safe to run again; installs only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  # Exactly one OpenCV distribution may provide cv2 (see requirements.txt).
  if .venv/bin/python -m pip show --quiet opencv-python >/dev/null 2>&1; then
    .venv/bin/python -m pip uninstall --quiet -y opencv-python
    .venv/bin/python -m pip install --quiet --force-reinstall --no-deps \
      "$(grep '^opencv-contrib-python==' requirements.txt)"
  fi
  echo "$want" > "$stamp"
fi
