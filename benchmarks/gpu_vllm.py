"""GPU benchmark of the two vLLM paths: the real HunyuanOCR architecture, RANDOM weights.

Times the ``hunyuan`` engine (vLLM's AsyncLLM in this process) or the
``hunyuan-api`` engine (against a ``vllm serve`` it starts) on 1920x192
subtitle strips with exactly ``--tokens`` new tokens each, as
``gpu_hunyuan.py`` times the transformers engine, so the three compare:

- latency of one strip at batch 1 (median of ``--repeats`` calls),
- throughput (strips/s) at each of ``--batches``,
- where a request's time goes (vLLM's own per-request timestamps: queue,
  prefill, decode, and the rest = the front end and transport),
- what the engine's crop preparation adds (``recognize`` vs the model call,
  on noise strips and on rendered text),
- GPU memory (nvidia-smi, per process) and vLLM's own memory report,
- with ``--extract VIDEO``, the whole pipeline on a video (real-time factor).

``--cap-gib 24`` gives vLLM ``gpu_memory_utilization`` = 24 GiB / the card's
memory: what a 24 GB card (RTX 4090D) holds. Rerun (GPU machine, vLLM and
transformers >= 5.13 installed)::

    python benchmarks/gpu_vllm.py --path inprocess --cap-gib 24 --kv-gib 16 --out bench-out/vllm_inprocess.json \
        --pyspy bench-out/pyspy_inprocess.txt --extract /tmp/b1080.mp4 --extract-set "" --extract-set recognizer.min_confidence=0
    python benchmarks/gpu_vllm.py --path server --cap-gib 24 --kv-gib 16 --bare-image-template \
        --out bench-out/vllm_server.json --extract /tmp/b1080.mp4 --extract-set "" --extract-set recognizer.min_confidence=0

Scripts that build a vLLM engine need a ``__main__`` guard (vLLM spawns its engine core).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "hunyuan")]

from subflow.engines.hunyuan import HunyuanVLLMEngine, describe_adjustments, installed_vllm, vllm_adjustments  # noqa: E402
from subflow.engines.hunyuan_api import HunyuanAPIEngine  # noqa: E402
from subflow.engines.hunyuan_common import PROMPTS  # noqa: E402
from subflow.recognizer import run_on_engine_loop  # noqa: E402
from subflow.records import Task  # noqa: E402

PROMPT = PROMPTS["recognize"]


class ForcedVLLM(HunyuanVLLMEngine):
    """The in-process engine generating exactly max_tokens per crop (random weights stop anywhere)."""

    forced = True

    def sampling_params(self, **extra):
        return super().sampling_params(**self.forcing(), **extra)

    def forcing(self) -> dict:
        return {"min_tokens": self.sampling.max_tokens, "ignore_eos": True} if self.forced else {}


class ForcedAPI(HunyuanAPIEngine):
    """The API engine asking the server for exactly max_tokens per crop (vLLM's extra request fields)."""

    forced = True

    def _body(self, image, prompt):
        body = super()._body(image, prompt)
        if self.forced:
            body.update(min_tokens=self.sampling.max_tokens, ignore_eos=True)
        return body


def noise_strips(n: int, seed: int = 0) -> list[np.ndarray]:
    """1920x192 strips of noise: the model's cost does not depend on what the pixels show."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (192, 1920, 3), dtype=np.uint8) for _ in range(n)]


def text_strips(n: int) -> list[np.ndarray]:
    """1920x192 strips with one rendered subtitle line on a smooth background (what the pipeline crops)."""
    import cv2

    rng = np.random.default_rng(1)
    out = []
    for i in range(n):
        strip = cv2.resize(rng.integers(0, 256, (3, 24, 3), dtype=np.uint8), (1920, 192), interpolation=cv2.INTER_CUBIC)
        cv2.putText(strip, f"Subtitle line number {i}, rendered for the benchmark.", (260, 120),
                    cv2.FONT_HERSHEY_DUPLEX, 1.9, (0, 0, 0), 9, cv2.LINE_AA)
        cv2.putText(strip, f"Subtitle line number {i}, rendered for the benchmark.", (260, 120),
                    cv2.FONT_HERSHEY_DUPLEX, 1.9, (255, 255, 255), 3, cv2.LINE_AA)
        out.append(strip)
    return out


def timed(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in seconds (fn returns host data, so the GPU work is finished)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


class RequestClock:
    """vLLM's own timestamps of each finished request (in-process only): where its time went."""

    def __init__(self, engine: HunyuanVLLMEngine) -> None:
        self.rows: list[dict] = []
        llm = engine._llm
        original = llm.generate

        async def generate(*args, **kwargs):
            started = time.perf_counter()
            last = None
            async for output in original(*args, **kwargs):
                last = output
                yield output
            m = getattr(last, "metrics", None)
            if m is not None and getattr(m, "queued_ts", 0):
                core = m.last_token_ts - m.queued_ts
                self.rows.append({"e2e": time.perf_counter() - started, "queue": m.scheduled_ts - m.queued_ts,
                                  "prefill": m.first_token_ts - m.scheduled_ts,
                                  "decode": m.last_token_ts - m.first_token_ts,
                                  "outside_core": time.perf_counter() - started - core})

        llm.generate = generate

    def summary(self) -> dict:
        rows, self.rows = self.rows, []
        if not rows:
            return {}
        return {key: round(1000 * statistics.median(r[key] for r in rows), 1) for key in rows[0]} | {"requests": len(rows)}


class GpuMemory:
    """Peak GPU memory of a set of processes, polled from nvidia-smi (vLLM's workers are child processes)."""

    def __init__(self, root_pid: int) -> None:
        self.root_pid, self.peak_mib, self._stop = root_pid, 0, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def pids(self) -> set[int]:
        import psutil

        try:
            root = psutil.Process(self.root_pid)
            return {self.root_pid} | {child.pid for child in root.children(recursive=True)}
        except psutil.Error:
            return set()

    def used_mib(self) -> int:
        try:
            out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits"],
                                 capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.TimeoutExpired):
            return 0
        mine = self.pids()
        return sum(int(used) for pid, used in (line.split(", ") for line in out.splitlines() if ", " in line)
                   if int(pid) in mine)

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak_mib = max(self.peak_mib, self.used_mib())
            self._stop.wait(0.5)

    def __enter__(self) -> "GpuMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def throughput(engine, strips: list[np.ndarray], batches: list[int], repeats: int, clock: RequestClock | None) -> dict:
    """ms per call and strips/s of the model call (``_generate``: crops already on the model's grid)."""
    out = {}
    for batch in batches:
        images = strips[:batch]
        start = time.perf_counter()
        run_on_engine_loop(engine._generate(images, PROMPT))  # first call at this size: warm-up
        first_s = time.perf_counter() - start
        if clock:
            clock.summary()
        seconds = timed(lambda: run_on_engine_loop(engine._generate(images, PROMPT)), repeats if batch == 1 else max(3, repeats // 3))
        row = {"seconds": round(seconds, 4), "ms_per_strip": round(1000 * seconds / batch, 2),
               "strips_per_s": round(batch / seconds, 1), "first_call_s": round(first_s, 2)}
        if clock:
            row["request_ms_median"] = clock.summary()
        if hasattr(engine, "peak_batched"):
            row["peak_batched_so_far"] = engine.peak_batched
            row["peak_kv_usage_so_far"] = round(engine.peak_kv_usage, 3)
        out[batch] = row
        print(f"  batch {batch:3d}: {1000 * seconds:8.1f} ms/call  {batch / seconds:7.1f} strips/s  {row.get('request_ms_median', '')}",
              flush=True)
    return out


def preparation(engine, repeats: int = 3) -> dict:
    """What ``recognize`` adds to the model call: the crop preparation (finding the text lines, resizing)."""
    out = {}
    for name, strips in (("noise", noise_strips(8, seed=5)), ("text", text_strips(8))):
        for batch in (1, 8):
            images = strips[:batch]
            run_on_engine_loop(engine.recognize(images, Task()))
            full = timed(lambda: run_on_engine_loop(engine.recognize(images, Task())), repeats)
            prep = timed(lambda: engine._prepare(images), repeats)
            out[f"{name}_batch{batch}"] = {"recognize_ms": round(1000 * full, 1), "prepare_ms": round(1000 * prep, 1)}
    print(f"  recognize vs preparation: {out}", flush=True)
    return out


def pyspy(pid: int, seconds: float, path: Path, work) -> str:
    """Sample every Python stack of ``pid`` and its children while ``work()`` runs (collapsed stacks)."""
    try:
        proc = subprocess.Popen(["py-spy", "record", "--pid", str(pid), "--subprocesses", "--format", "raw",
                                 "--rate", "50", "--duration", str(int(seconds)), "--nonblocking", "-o", str(path)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    except OSError as exc:
        work()
        return f"py-spy not run: {exc}"
    time.sleep(1.0)
    work()
    _, err = proc.communicate(timeout=seconds + 60)
    return f"py-spy exit {proc.returncode}: {err.strip()[-300:]}"


def pipeline_figures(engine, video: str, overrides: dict[str, str], calls_attr: str) -> dict:
    """The whole pipeline on ``video`` with a loaded engine; counts the engine calls through ``calls_attr``."""
    from subflow.pipeline import Pipeline, build_config
    from subflow.source import VideoSource

    config = build_config(None, None, dict(overrides))
    sizes: list[int] = []
    original = getattr(engine, calls_attr)

    def counted(images, *args, **kwargs):
        sizes.append(len(images))
        return original(images, *args, **kwargs)

    setattr(engine, calls_attr, counted)
    try:
        pipeline = Pipeline(config, engine)
        with VideoSource(video, config.source) as source:
            size = f"{source.width}x{source.height}"
            cues = sum(1 for update in pipeline.updates(source) if update.final and update.cue is not None)
    finally:
        setattr(engine, calls_attr, original)
    stats = pipeline.stats
    row = {"video": video, "size": size, "overrides": overrides, "media_s": round(stats.position, 2),
           "wall_s": round(stats.elapsed, 2), "realtime_factor": round(stats.realtime_factor, 1), "frames": stats.frames,
           "crops_read": stats.crops_read, "cues": cues, "decode_s": round(stats.decode, 2),
           "detect_s": round(stats.detect, 2), "recognize_busy_s": round(stats.recognize, 2),
           "engine_calls": len(sizes), "mean_batch": round(sum(sizes) / max(1, len(sizes)), 2)}
    if stats.translation is not None:  # --extract-translate: what the translation stage did
        row["translation"] = {"translated": stats.translation.translated, "untranslated": stats.translation.untranslated,
                              "reads": stats.translation.usage.requests, "busy_s": round(stats.translation.seconds, 2)}
    print(f"  extract {overrides or 'defaults'}: {stats.position:.1f} s of {size} video in {stats.elapsed:.1f} s = "
          f"{stats.realtime_factor:.1f}x real time, {stats.crops_read} crops, {cues} cues, {len(sizes)} engine calls "
          f"(mean {row['mean_batch']})", flush=True)
    return row


def sampling_variants(engine, strips: list[np.ndarray], args, clock: RequestClock | None) -> dict:
    """The throughput rows again with other sampling values, on the loaded engine (restored afterwards)."""
    out, default = {}, engine.sampling
    batches = [int(b) for b in args.variant_batches.split(",")]
    for spec in args.sampling_variant:
        values = {key: type(getattr(default, key))(value) for key, value in (item.split("=", 1) for item in spec.split(","))}
        engine.sampling = dataclasses.replace(default, **values)
        print(f"sampling variant {values}:", flush=True)
        try:
            out[spec] = throughput(engine, strips, batches, args.repeats, clock)
        finally:
            engine.sampling = default
    return out


def profile_batch1(engine, strip: np.ndarray, directory: str) -> dict:
    """vLLM's torch profiler (engine core and front end) over five batch-1 calls: where one strip's time goes."""
    run_on_engine_loop(engine._generate([strip], PROMPT))
    run_on_engine_loop(engine._llm.start_profile())
    start = time.perf_counter()
    for _ in range(5):
        run_on_engine_loop(engine._generate([strip], PROMPT))
    seconds = time.perf_counter() - start
    run_on_engine_loop(engine._llm.stop_profile())
    files = sorted(str(f) for f in Path(directory).rglob("*") if f.is_file())
    print(f"  profiled 5 batch-1 calls in {seconds:.3f} s (profiler on); files: {files}", flush=True)
    return {"ms_per_call_profiled": round(200 * seconds, 1), "files": files}


def serve_command(checkpoint: str, port: int, engine: HunyuanVLLMEngine) -> list[str]:
    """``vllm serve`` with the in-process engine's settings and the same release adjustments."""
    s = engine.settings
    cmd = [sys.executable, "-m", "vllm.entrypoints.cli.main", "serve", checkpoint, "--port", str(port),
           "--served-model-name", "hunyuanocr", "--no-enable-prefix-caching", "--mm-processor-cache-gb", "0",
           "--limit-mm-per-prompt", json.dumps({"image": 1}), "--max-model-len", str(s.max_model_len),
           "--max-num-batched-tokens", str(s.max_num_batched_tokens), "--max-num-seqs", str(s.max_num_seqs),
           "--gpu-memory-utilization", str(s.gpu_memory_utilization), "--dtype", s.dtype]
    if s.enforce_eager:
        cmd.append("--enforce-eager")
    for adjustment in engine.adjustments:
        for key, value in adjustment.args.items():
            cmd += [f"--{key.replace('_', '-')}", value if isinstance(value, str) else json.dumps(value)]
    for key, value in s.engine_args.items():
        if key != "distributed_executor_backend":
            cmd += [f"--{key.replace('_', '-')}", value if isinstance(value, str) else json.dumps(value)]
    return cmd


def wait_ready(url: str, proc: subprocess.Popen, timeout: float) -> float:
    import httpx

    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"vllm serve exited with {proc.returncode}")
        try:
            if httpx.get(url + "/models", timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"vllm serve not ready after {timeout:.0f} s")


def save(report: dict, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2, default=str))  # default: engine_args may hold vLLM config objects


def wait_turn(path: str | None) -> None:
    """Wait for ``path`` to exist (lets several engines load at once on one GPU but be timed one at a time)."""
    while path and not Path(path).exists():
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description="HunyuanOCR vLLM paths, GPU benchmark (random weights)")
    parser.add_argument("--path", choices=("inprocess", "server"), default="inprocess")
    parser.add_argument("--checkpoint", default="/tmp/hunyuanocr-random", help="built here if missing")
    parser.add_argument("--out", default="bench-out/gpu_vllm.json")
    parser.add_argument("--batches", default="1,8,64,256,512")
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--cap-gib", type=float, default=0.0, help="GPU memory for vLLM (0 = the engine default)")
    parser.add_argument("--kv-gib", type=float, default=0.0,
                        help="fixed KV cache size; vLLM then skips its memory profiling, so engines that load at "
                        "the same time on one GPU cannot skew each other's sizing")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="engine option (repeatable)")
    parser.add_argument("--sampling-variant", action="append", default=[], metavar="KEY=VALUE,...",
                        help="after the main figures, time --variant-batches again on the same engine with these "
                        "sampling values (e.g. repetition_penalty=1.0): no second engine start")
    parser.add_argument("--variant-batches", default="1,64")
    parser.add_argument("--profile", metavar="DIR",
                        help="in-process: vLLM's torch profiler over 5 batch-1 calls after the figures; its tables "
                        "(kernels by GPU time, ops by CPU time) go to DIR and the log")
    parser.add_argument("--concurrency", type=int, default=128, help="hunyuan-api requests in flight")
    parser.add_argument("--also-concurrency", type=int, default=32,
                        help="hunyuan-api: time the largest batch again with this many requests in flight (0 = no)")
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--extract", metavar="VIDEO")
    parser.add_argument("--extract-set", action="append", metavar="KEY=VALUE,...")
    parser.add_argument("--pyspy", metavar="FILE", help="py-spy collapsed stacks during the largest batch")
    parser.add_argument("--bare-image-template", action="store_true",
                        help="server: serve with the checkpoint's chat template rendering an image as the bare image "
                        "token (vLLM 0.26 wraps it in start/end itself; the wrapped form gets wrapped twice)")
    parser.add_argument("--ready", metavar="FILE", help="touch FILE once the engine is loaded")
    parser.add_argument("--start-after", metavar="FILE", help="load first, then wait for FILE before timing")
    parser.add_argument("--done", metavar="FILE", help="touch FILE when timing is over")
    args = parser.parse_args()

    import torch

    checkpoint = Path(args.checkpoint)
    if not (checkpoint / "config.json").exists():
        from tiny_checkpoint import build

        build(checkpoint, real_sizes=True, device="cuda" if torch.cuda.is_available() else "cpu", dtype="bfloat16",
              min_pixels=512 * 512, max_pixels=2048 * 2048)
    version, native = installed_vllm()
    options: dict = {"model": str(checkpoint), "max_tokens": args.tokens}
    if args.cap_gib and torch.cuda.is_available():
        options["gpu_memory_utilization"] = round(args.cap_gib * 2**30 / torch.cuda.get_device_properties(0).total_memory, 4)
    options["engine_args"] = {}
    if args.kv_gib:
        options["engine_args"]["kv_cache_memory_bytes"] = int(args.kv_gib * 2**30)
    if args.profile and args.path == "inprocess":
        from vllm.config import ProfilerConfig

        options["engine_args"]["profiler_config"] = ProfilerConfig(
            profiler="torch", torch_profiler_dir=str(Path(args.profile).resolve()), torch_profiler_with_stack=False)
    options |= dict(item.split("=", 1) for item in args.set)
    batches = [int(b) for b in args.batches.split(",")]
    report: dict = {
        "what": f"{args.path} vLLM path, real HunyuanOCR architecture, RANDOM weights, 1920x192 strips, "
                f"{args.tokens} new tokens each",
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "vllm": version, "native_hunyuan_vl": native, "adjustments": describe_adjustments(vllm_adjustments(native)),
        "env": {k: v for k, v in os.environ.items() if k.startswith("VLLM_")},
        "options": options, "cap_gib": args.cap_gib,
    }
    vllm_engine = ForcedVLLM(**options)  # the settings (and, for the server, its flags) come from here
    server = None
    started = time.perf_counter()
    if args.path == "inprocess":
        engine = vllm_engine
        run_on_engine_loop(engine._start())
        clock = RequestClock(engine)
        memory_root = os.getpid()
    else:
        cmd = serve_command(str(checkpoint), args.port, vllm_engine)
        if args.bare_image_template:
            template = Path(args.out).with_suffix(".chat_template.jinja")
            wrapped = "<｜hy_place▁holder▁no▁100｜><｜hy_place▁holder▁no▁102｜><｜hy_place▁holder▁no▁101｜>"
            template.write_text((checkpoint / "chat_template.jinja").read_text().replace(wrapped, "<｜hy_place▁holder▁no▁102｜>"))
            cmd += ["--chat-template", str(template), "--chat-template-content-format", "openai"]
        report["serve_command"] = " ".join(cmd)
        log = open(Path(args.out).with_suffix(".server.log"), "w")
        env = os.environ.copy()
        for adjustment in vllm_engine.adjustments:
            env = adjustment.env | env  # a value exported by the user wins, as in the engine
        server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        url = f"http://127.0.0.1:{args.port}/v1"
        engine = ForcedAPI(endpoints=[url], concurrency=args.concurrency, timeout=600,
                           **{k: v for k, v in options.items() if k in ("model", "max_tokens")})
        wait_ready(url, server, 900)
        clock = None
        memory_root = server.pid
    report["start_s"] = round(time.perf_counter() - started, 1)
    print(f"{args.path}: vLLM {version} ready in {report['start_s']} s; adjustments: {report['adjustments']}", flush=True)
    save(report, args.out)
    if args.ready:
        Path(args.ready).touch()
    wait_turn(args.start_after)
    try:
        strips = noise_strips(max(batches))
        with GpuMemory(memory_root) as memory:
            report["batches"] = throughput(engine, strips, batches, args.repeats, clock)
            save(report, args.out)
            if args.path == "server" and args.also_concurrency:
                for endpoint in engine.endpoints:
                    endpoint.slots = args.also_concurrency
                report[f"concurrency_{args.also_concurrency}"] = throughput(engine, strips, [max(batches)], 3, None)
                for endpoint in engine.endpoints:
                    endpoint.slots = args.concurrency
            if args.pyspy:
                biggest = strips[: max(batches)]
                report["pyspy"] = pyspy(memory_root, 8, Path(args.pyspy),
                                        lambda: run_on_engine_loop(engine._generate(biggest, PROMPT)))
            report["sampling_variants"] = sampling_variants(engine, strips, args, clock)
            if args.profile and args.path == "inprocess":
                report["profile"] = profile_batch1(engine, strips[0], args.profile)
            report["preparation"] = preparation(engine)
            save(report, args.out)
            engine.forced = False  # the pipeline runs the engine as users do
            report["extract"] = []
            for spec in (args.extract_set or [""]) if args.extract else []:
                overrides = dict(item.split("=", 1) for item in spec.split(",") if item.strip())
                try:
                    report["extract"].append(pipeline_figures(engine, args.extract, overrides, "_generate"))
                except Exception as exc:  # keep the other figures
                    report["extract"].append({"overrides": overrides, "error": f"{type(exc).__name__}: {exc}"[:1000]})
                save(report, args.out)
        report["gpu_peak_mib"] = memory.peak_mib
        if args.path == "inprocess":
            report["peak_batched"] = engine.peak_batched
    finally:
        if args.done:
            Path(args.done).touch()
        save(report, args.out)
        run_on_engine_loop(engine.aclose())
        if server is not None:
            server.terminate()
            server.wait(30)
    print(json.dumps({k: report[k] for k in ("start_s", "batches", "gpu_peak_mib") if k in report}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
