#!/usr/bin/env bash
# The wheels bench/gpu_pass.py installs on a CUDA machine that reaches no package index: the
# Python 3.12 x86_64 wheels of every package the lock installed into .venv, less the ones a
# CUDA image always has (torch and NVIDIA's libraries, the scientific stack). About 43 MB, into
# .whl/, which git ignores here. The pass installs only those its machine lacks.
# Needs `make install` (the lock in .venv) and the package index. Run as `bash bench/gpu_wheels.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
test -x .venv/bin/pip || { echo "gpu_wheels: .venv not found: run 'make install' first" >&2; exit 1; }
grep -qxF /.whl/ .git/info/exclude 2>/dev/null || echo /.whl/ >>.git/info/exclude

IMAGE_HAS='torch|torchvision|torchaudio|triton|nvidia-.*|cuda-.*|numpy|scipy|pandas|opencv-python.*|numba|llvmlite'
IMAGE_HAS+='|scikit-learn|matplotlib|pillow|pyarrow|fonttools|kiwisolver|contourpy|sympy|mpmath|networkx'
IMAGE_HAS+='|jinja2|markupsafe|fsspec|pip|wheel|segpipe|pytest|pytest-xdist|hypothesis|execnet'
wanted=$(mktemp)
trap 'rm -f "$wanted"' EXIT
.venv/bin/pip list --format=freeze --exclude-editable | grep -viE "^($IMAGE_HAS)==" >"$wanted"

PLATFORMS=(manylinux_2_35_x86_64 manylinux_2_34_x86_64 manylinux_2_31_x86_64 manylinux_2_28_x86_64
           manylinux_2_27_x86_64 manylinux_2_26_x86_64 manylinux_2_24_x86_64 manylinux_2_17_x86_64
           manylinux2014_x86_64 manylinux1_x86_64)
rm -rf .whl && mkdir .whl
# --no-deps: the lock is already the whole closure. Pure-Python packages published only as
# sources (antlr4-python3-runtime, for hydra) are built into wheels here.
.venv/bin/pip download --quiet --no-deps --prefer-binary --python-version 3.12 --implementation cp \
    "${PLATFORMS[@]/#/--platform=}" --platform=any -d .whl -r "$wanted"
for source in .whl/*.tar.gz; do
    [ -e "$source" ] || continue
    .venv/bin/pip wheel --quiet --no-deps -w .whl "$source" && rm "$source"
done
echo "$(ls .whl | wc -l) wheels, $(du -sh .whl | cut -f1), in .whl/"
