#!/usr/bin/env bash
# Create .venv and install dp-auditor with its dev/test extras (CPU torch from constraints/cpu.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints/cpu.txt -e ".[dev]"
