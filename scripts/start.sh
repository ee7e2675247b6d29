#!/usr/bin/env bash
# Set up the environment and start the dashboard (http://localhost:8501).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m streamlit run app.py --server.headless true \
  --browser.gatherUsageStats false "$@"
