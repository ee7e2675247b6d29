#!/usr/bin/env bash
# Set up the environment and run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k intake).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$rc"
