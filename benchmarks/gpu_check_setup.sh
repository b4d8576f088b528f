#!/usr/bin/env bash
# Fetches the wheels that the lent GPU machine's image lacks into .whl/ at the repository root,
# for the device tool's `carry` (see benchmarks/README.md, "GPU check"). The image has torch,
# numpy, scipy, einops, pytest and hypothesis; of skelmask's dependencies only geoopt is missing.
# geoopt is pure Python; the flags pick wheels for the machine's CPython 3.12 on x86-64.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-python3}"
"$python" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .whl "geoopt==0.5.1"
if ! git check-ignore -q .whl/; then
    echo ".whl/ is not ignored by git; it must travel as a carried path, not as a tracked file" >&2
    exit 1
fi
ls -l .whl
