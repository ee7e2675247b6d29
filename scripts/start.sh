#!/usr/bin/env bash
# Set up the environment, load the demo clinic into an empty database and
# start the dashboard (http://localhost:8501).
#   ANALYZER_DATA_DIR  where the database and photos live (default data/)
#   ANALYZER_NO_DEMO=1 skip the demo step
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
export GLOG_minloglevel=${GLOG_minloglevel:-2}
if [ -z "${ANALYZER_NO_DEMO:-}" ]; then
  # Fills an empty database with two demo treatment courses (about a minute,
  # once); prints the demo user's password the first time.
  .venv/bin/python -m analyzer demo
  creds="${ANALYZER_DATA_DIR:-data}/DEMO_CREDENTIALS.txt"
  if [ -f "$creds" ]; then
    echo "demo: sign in with the user name and password in $creds"
  fi
fi
exec .venv/bin/python -m streamlit run app.py --server.headless true \
  --browser.gatherUsageStats false "$@"
