#!/bin/bash
# The GPU measurements still open (issues 11, 12), in one background queue for a lent GPU host:
# results and a status log go to $RES (default /tmp/res), one log and one JSON per run.
#
# Needs on that host: vLLM (../shared/tools/vllm-gpu-kit), PyAV, srt and Ray importable (PYTHONPATH),
# the DejaVu Sans Bold font for samples/generate.py. Start it detached so it outlives the call that starts it:
#     setsid nohup bash benchmarks/gpu_session.sh > /tmp/queue.log 2>&1 < /dev/null &
# then poll $RES/status. The order is the priority: each run is bounded by `timeout`.
set -u
cd "$(dirname "$0")/.."
export VLLM_USE_FLASHINFER_SAMPLER=0 HF_HUB_OFFLINE=1 VLLM_WORKER_MULTIPROC_METHOD=spawn PYTHONUNBUFFERED=1 \
    RAY_USAGE_STATS_ENABLED=0 TOKENIZERS_PARALLELISM=false PYTHONPATH="${PYTHONPATH:-}:$PWD"
R=${RES:-/tmp/res}; CKPT=${CKPT:-/tmp/hy}; mkdir -p "$R" /tmp/v16
step() { echo "$(date +%T) $*" >> "$R/status"; }
run() { local name=$1 limit=$2; shift 2; step "start $name"; timeout "$limit" "$@" > "$R/$name.log" 2>&1; step "end $name rc=$?"; }

[ -f "$CKPT/config.json" ] || run checkpoint 300 python3 tests/hunyuan/tiny_checkpoint.py "$CKPT" --real-sizes --device cuda \
    --dtype bfloat16 --min-pixels 262144 --max-pixels 4194304
step videos
python3 samples/generate.py bench --height 1080 --duration 90 --seed 1 --crf 28 --out /tmp/b1080.mp4 > "$R/gen.log" 2>&1 &
for i in $(seq 1 16); do
    python3 samples/generate.py bench --height 1080 --duration 30 --seed $((i + 10)) --crf 28 --out /tmp/v16/v$i.mp4 >> "$R/gen.log" 2>&1 &
done
wait
X="--extract /tmp/b1080.mp4 --extract-set recognizer.min_confidence=0"
T="--engine hunyuan-transformers --set engines.hunyuan-transformers.model=$CKPT --set engines.hunyuan-transformers.max_tokens=24"

# issue 12: where a batch-1 strip's 126 ms go in vLLM 0.26 (its torch profiler: kernels by GPU time, ops by CPU time)
run vllm_profile 480 python3 benchmarks/gpu_vllm.py --path inprocess --checkpoint "$CKPT" --cap-gib 24 --kv-gib 16 \
    --batches 1,64 --profile "$R/prof" --out "$R/vllm_profile.json" $X
# issue 11: 16 1080p videos with the GPU engine, one extract process (one video after another) vs batch on a
# Ray head here; the summaries say how long each engine took to load (the last run's Ray actor took ~155 s).
# The actor reserving 4 CPUs runs torch with 4 threads (Ray sets OMP_NUM_THREADS to them) where the default
# one runs with 1 and extract's process with 16: does its load take extract's time then?
run batch 900 python3 benchmarks/batch_bench.py --videos /tmp/v16/*.mp4 --rounds 1 \
    --runs "extract all,batch ray,batch ray (engine CPUs 4)" \
    --args "$T --set recognizer.min_confidence=0" --out "$R/batch_gpu.json"
# ... and extract's own load, measured rather than inferred (its -v log: "engine ...: loaded in N s")
run extract_load 400 python3 -m subflow.cli extract /tmp/v16/v1.mp4 -o /tmp/v1.srt -v $T --set recognizer.min_confidence=0
# issue 12: vllm serve with 4 API server processes (each prepares its own images) + hunyuan-api
run vllm_server4 540 python3 benchmarks/gpu_vllm.py --path server --checkpoint "$CKPT" --cap-gib 24 \
    --set 'engine_args={"kv_cache_memory_bytes": 17179869184, "api_server_count": 4}' \
    --bare-image-template --batches 1,64,512 --out "$R/vllm_server4.json" $X
step all-done
