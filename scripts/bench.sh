#!/usr/bin/env bash
# Runs the benchmark (see scripts/bench.py): scripts/bench.sh [--runs N] [--write BENCHMARKS.md]
set -euo pipefail
exec python3 "$(dirname "$0")/bench.py" "$@"
