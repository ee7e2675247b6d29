#!/usr/bin/env bash
# Set up the environment and run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh -k intake).
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh || exit 1
# A real PostgreSQL for the store tests (best effort: they skip, with the
# reason, when it cannot start). An existing TEST_POSTGRES_URL is kept.
if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  if url=$(scripts/postgres.sh 2>"${TMPDIR:-/tmp}/analyzer-postgres-start.log"); then
    export TEST_POSTGRES_URL="$url"
  else
    export TEST_POSTGRES_SKIP_REASON="scripts/postgres.sh failed: $(tail -n 3 "${TMPDIR:-/tmp}/analyzer-postgres-start.log" | tr '\n' ' ')"
    echo "warning: PostgreSQL did not start; its tests will be skipped (see ${TMPDIR:-/tmp}/analyzer-postgres-start.log)" >&2
  fi
fi
# pdftoppm for the report tests (best effort: the page-render test skips without it).
scripts/pdf_tools.sh || echo "warning: pdftoppm missing; the PDF page-render test will be skipped" >&2
# Debian's Chromium for the dashboard's browser test (best effort: the test
# skips, with the reason, when it is missing).
if ! scripts/browser.sh >/dev/null 2>"${TMPDIR:-/tmp}/analyzer-browser-install.log"; then
  echo "warning: Chromium could not be installed; the browser test will be skipped (see ${TMPDIR:-/tmp}/analyzer-browser-install.log)" >&2
fi
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating as a failure" >&2
  exit 1
fi
exit "$rc"
