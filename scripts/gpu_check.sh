#!/usr/bin/env bash
# GPU readiness in one command, on a fresh CUDA machine that reaches only the package registries:
#
#   scripts/gpu_check.sh            # from the repository root
#
# 1. installs the GPU dependency set (requirements/gpu.txt: the CPU set + vllm, which brings its own
#    CUDA torch and torchvision, with gpu.txt's pins replacing cpu.txt's: scripts/gpu_requirements.py)
#    into its own virtual environment (.venv-gpu, or $GPU_VENV);
# 2. builds the tiny random Qwen2.5-VL the test suite uses (tests/tiny_models.py) with its processor, at
#    head size 64 (vLLM's attention kernels do not take the suite's 16);
# 3. runs one short SFT and one DPO job body (TRL + LoRA, keyframes as images) on CUDA;
# 4. serves the model with vLLM through our backends: the offline engine (vllm.LLM, guided JSON,
#    base and with the SFT adapter as a LoRA request) and the OpenAI-compatible server (`vllm serve`
#    with --lora-modules), and prints throughput and GPU memory.
#
# Figures are printed as JSON lines (scripts/gpu_check.py; GPU memory as {"step": "gpu-memory", ...}).
# A failing step stops the script with "gpu_check: FAILED at <step>" and its exit status. Nothing here is
# part of the test suite (tests/test_gpu_check.py checks the script's own parts on CPU).
# A fresh machine may lack what pip needs to build the set: Python 3.11 with venv/ensurepip and its
# headers, and a C++ compiler (pdqhash has no wheel and builds from source). When one is missing and
# apt-get is there (as root, or with password-less sudo), they are installed from the distribution's
# archive first (Triton also compiles its launcher with gcc and Python.h at run time). Python 3.12 is
# taken where the archive has no 3.11 (Ubuntu 24.04), with a warning: the GPU set resolves for 3.12 in
# a pip dry run too (binary wheels; pdqhash aside, which builds from source either way).
# Environment: GPU_VENV (venv folder), GPU_CHECK_WORK (scratch folder), PYTHON (python3.11, else 3.12),
# VLLM_PORT (8765), PIP_EXTRA (extra pip arguments, e.g. an index URL).
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-}"
GPU_VENV="${GPU_VENV:-.venv-gpu}"
WORK="${GPU_CHECK_WORK:-$(mktemp -d /tmp/gpu-check-XXXXXX)}"
VLLM_PORT="${VLLM_PORT:-8765}"
read -r -a pip_extra <<< "${PIP_EXTRA:-}"
# Everything is local (the model is built here): a stray model-hub look-up fails at once instead of
# waiting on connection timeouts on a node that reaches only the package registries.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
server_pid=""
step="start"

log() {
    step="$*"
    printf '\n== %s ==\n' "$*"
}

failed() {
    local status=$?
    echo "gpu_check: FAILED at \"$step\" (exit status $status); scratch folder: $WORK" >&2
    exit "$status"
}
trap failed ERR

cleanup() {
    if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid"
        wait "$server_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT

gpu_memory() {  # one JSON line per GPU: after which step, used and total MiB
    nvidia-smi --query-gpu=index,name,memory.used,memory.total --format=csv,noheader,nounits |
        while IFS=',' read -r index name used total; do
            printf '{"step": "gpu-memory", "after": "%s", "gpu": %s, "name": "%s", "used_mib": %s, "total_mib": %s}\n' \
                "$step" "${index// /}" "${name# }" "${used// /}" "${total// /}"
        done
}

log "device"
if ! command -v nvidia-smi >/dev/null; then
    echo "nvidia-smi not found: this check needs an NVIDIA GPU node" >&2
    exit 1
fi
gpu_memory

log "operating-system prerequisites"
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        sudo -n "$@"
    else
        return 1
    fi
}
apt_install() {  # the distribution's packages, when apt-get is there and we may use it
    command -v apt-get >/dev/null || return 1
    if [[ -z "${apt_updated:-}" ]]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq || return 1
        apt_updated=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}
usable_python() {  # Python 3.11/3.12 that can make a venv with pip and build C extensions (Python.h)
    command -v "$1" >/dev/null 2>&1 && "$1" -c '
import ensurepip, os, sys, sysconfig, venv
assert sys.version_info[:2] in ((3, 11), (3, 12))
assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))
' 2>/dev/null
}
pick_python() {
    local candidate
    for candidate in python3.11 python3.12 python3; do
        if usable_python "$candidate"; then
            PYTHON="$(command -v "$candidate")"
            return 0
        fi
    done
    return 1
}
if [[ -n "$PYTHON" ]]; then
    if ! usable_python "$PYTHON"; then
        echo "PYTHON=$PYTHON is not a Python 3.11/3.12 with venv (ensurepip) and its headers (Python.h)" >&2
        exit 1
    fi
else
    if ! usable_python python3.11; then
        echo "no Python 3.11 with venv and headers on PATH: trying apt-get (python3.11, -venv, -dev)"
        apt_install python3.11 python3.11-venv python3.11-dev || true
    fi
    if ! pick_python; then
        apt_install python3 python3-venv python3-dev || true
        if ! pick_python; then
            echo "no usable Python 3.11 (python3.11, python3.11-venv, python3.11-dev) and none could be installed; set PYTHON" >&2
            exit 1
        fi
    fi
fi
"$PYTHON" -c 'import sys; print(f"Python {sys.version.split()[0]} at {sys.executable}")'
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "warning: the pins (requirements/*.txt) are checked on Python 3.11; trying this one" >&2
fi
if ! command -v g++ >/dev/null || ! command -v make >/dev/null; then
    echo "no C++ compiler (pdqhash builds from source): installing build-essential with apt-get"
    if ! apt_install build-essential; then
        echo "no g++/make and apt-get could not install build-essential; install a C++ toolchain" >&2
        exit 1
    fi
fi

log "install the GPU set into $GPU_VENV"
start=$SECONDS
if [[ ! -x "$GPU_VENV/bin/python" ]]; then
    "$PYTHON" -m venv "$GPU_VENV"
fi
"$GPU_VENV/bin/pip" install --quiet --upgrade pip "${pip_extra[@]}"
"$GPU_VENV/bin/python" scripts/gpu_requirements.py requirements/gpu.txt >"$WORK/requirements-gpu.txt"
"$GPU_VENV/bin/pip" install --quiet -r "$WORK/requirements-gpu.txt" "${pip_extra[@]}"
"$GPU_VENV/bin/pip" install --quiet --no-deps -r requirements/nodeps.txt "${pip_extra[@]}"
py="$GPU_VENV/bin/python"
"$py" - <<'PY'
import torch, transformers, trl, peft, vllm
print(f"torch {torch.__version__} (CUDA {torch.version.cuda}, available: {torch.cuda.is_available()}), "
      f"transformers {transformers.__version__}, trl {trl.__version__}, peft {peft.__version__}, vllm {vllm.__version__}")
PY
echo "install: $((SECONDS - start)) s"

log "build the tiny Qwen2.5-VL in $WORK"
"$py" scripts/gpu_check.py build "$WORK"

log "SFT and DPO job bodies on CUDA"
"$py" scripts/gpu_check.py train "$WORK"

log "vLLM offline engine (our VllmOfflineBackend)"
"$py" scripts/gpu_check.py offline "$WORK"
gpu_memory

log "vLLM OpenAI-compatible server (our VllmServerBackend)"
"$GPU_VENV/bin/vllm" serve "$WORK/tiny-qwen2_5_vl" \
    --host 127.0.0.1 --port "$VLLM_PORT" \
    --max-model-len 4096 --gpu-memory-utilization 0.3 \
    --limit-mm-per-prompt '{"image": 8}' \
    --enable-prefix-caching \
    --enable-lora --max-lora-rank 16 --lora-modules "adapter=$WORK/sft/adapter" \
    >"$WORK/vllm-serve.log" 2>&1 &
server_pid=$!
server_healthy() {  # the venv's Python instead of curl, which a bare image may lack
    "$py" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=5)' \
        "http://127.0.0.1:$VLLM_PORT/health" >/dev/null 2>&1
}
for _ in $(seq 1 180); do
    if server_healthy; then
        break
    fi
    if ! kill -0 "$server_pid" 2>/dev/null; then
        tail -n 40 "$WORK/vllm-serve.log" >&2
        echo "vllm serve exited before it was ready" >&2
        exit 1
    fi
    sleep 2
done
if ! server_healthy; then
    tail -n 40 "$WORK/vllm-serve.log" >&2
    echo "vllm serve did not answer /health within 6 minutes" >&2
    exit 1
fi
"$py" scripts/gpu_check.py server "$WORK" "http://127.0.0.1:$VLLM_PORT"
gpu_memory

log "done (scratch folder: $WORK)"
