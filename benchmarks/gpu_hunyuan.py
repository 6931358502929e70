"""GPU benchmark of the ``hunyuan-transformers`` engine: the real HunyuanOCR architecture, RANDOM weights.

Builds a checkpoint with HunyuanOCR's real sizes (0.46B ViT + 0.54B LLM,
random weights: the figures are costs, not accuracy), then times the
engine's batched generation on 1920x192 subtitle strips with exactly
``--tokens`` new tokens per strip:

- latency of one strip at batch 1 (median of ``--repeats`` runs),
- throughput (strips/s) at each of ``--batches``,

for each generation setup in ``--variants``: ``dynamic`` (plain generate,
dynamic KV cache), ``static`` (static KV cache, which transformers compiles
and replays as CUDA graphs) or ``graphs`` (the engine's own loop: fixed KV
buffers, decode steps replayed as CUDA graphs captured per batch bucket);
``-compile`` adds torch.compile (``graphs-compile`` is the engine's default
on CUDA), ``-fp8`` the engine's FP8 ViT (``graphs-compile-fp8``). For ``graphs`` it also times a batch of mixed crop sizes (what the pipeline
sends) and checks its answers against plain ``generate`` one crop at a time.
Rerun (on a GPU machine with torch and transformers >= 5.13)::

    python benchmarks/gpu_hunyuan.py --out bench-out/gpu_hunyuan.json

``--extract VIDEO`` also runs the whole pipeline (decode, detection, this
engine, merging) on VIDEO and reports its real-time factor; make a 1080p one
with ``python samples/generate.py bench --height 1080 --duration 30 --out V.mp4``.
``--extract-translate en`` then times the same run with image translation
(HunyuanOCR translates each cue from its crop, docs/translation.md) against
recognition alone, both warm and alternated three times, and reports the ratio
of the medians (target: <= 1.3x).
``--memory-cap-gib 24`` caps PyTorch's GPU memory as a 24 GB card would;
``benchmarks/gpu_vllm.py`` times the two vLLM engines the same way.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "hunyuan")]

from gpu_vllm import pipeline_figures, timed, wait_turn  # noqa: E402
from subflow.engines.hunyuan_common import PROMPTS, grid_size  # noqa: E402
from subflow.engines.hunyuan_transformers import HunyuanTransformersEngine  # noqa: E402


def run_variant(checkpoint: Path, variant: str, strips: list[np.ndarray], batches: list[int], tokens: int,
                repeats: int, args: argparse.Namespace) -> tuple[dict, HunyuanTransformersEngine]:
    import torch

    engine = HunyuanTransformersEngine(
        model=str(checkpoint), max_tokens=tokens, batch_size=max(batches), **variant_options(variant),
        min_pixels=512 * 512, max_pixels=2048 * 2048,
    )
    start = time.perf_counter()
    engine.load()
    load_s = time.perf_counter() - start
    engine._model.generation_config.min_new_tokens = tokens  # random weights: never stop early
    engine.stop_at_eos = False  # same for the graphs loop
    prompt = PROMPTS["recognize"]
    result: dict = {"variant": variant, "load_s": round(load_s, 2), "batches": {},
                    "loaded_gib": round(torch.cuda.memory_allocated() / 2**30, 2)}
    if args.ready:
        Path(args.ready).touch()
    wait_turn(args.start_after)
    for batch in batches:
        images = strips[:batch]
        try:
            start = time.perf_counter()
            answers = engine.generate_batch(images, prompt)  # first call: compilation / allocation
            first_s = time.perf_counter() - start
            engine.generate_batch(images, prompt)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            seconds = timed(lambda: engine.generate_batch(images, prompt), repeats if batch == 1 else max(3, repeats // 3))
        except torch.OutOfMemoryError as exc:  # a memory cap: record the batch that no longer fits, go on
            result["batches"][batch] = {"error": f"out of GPU memory: {exc}"[:300]}
            print(f"  {variant:8s} batch {batch:3d}: out of GPU memory", flush=True)
            torch.cuda.empty_cache()
            continue
        result["batches"][batch] = {
            "seconds": round(seconds, 4),
            "ms_per_strip": round(1000 * seconds / batch, 2),
            "strips_per_s": round(batch / seconds, 1),
            "first_call_s": round(first_s, 2),
            "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2),
            "peak_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2),
            "answers": len(answers),
        }
        print(f"  {variant:8s} batch {batch:3d}: {1000 * seconds:8.1f} ms/call  {batch / seconds:7.1f} strips/s "
              f"(first call {first_s:.1f} s)", flush=True)
    if args.quick:
        return result, engine
    if engine._decoder is not None:
        try:
            result["phases_ms"] = phases(engine, strips, batches, prompt)
            result["vit_ms_batch"] = vit_grouped(engine, strips)
            result["mixed"] = mixed_batch(engine, prompt)
            result["check"] = check_answers(checkpoint, engine, strips[:2] + mixed_crops(2, 5), tokens)
        except Exception as exc:  # keep the throughput figures measured above
            result["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            print(f"  {variant}: FAILED after the throughput runs: {result['error']}", flush=True)
    # Where the time of one strip goes: image preprocessing + ViT alone.
    processor, model = engine._processor, engine._model
    text = processor.apply_chat_template(
        [{"role": "system", "content": ""}, {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}],
        tokenize=False, add_generation_prompt=True,
    )

    def preprocess(n: int):
        return processor(text=[text] * n, images=strips[:n], return_tensors="pt",
                         padding=True, device=engine.device)

    result["preprocess_ms"] = {n: round(1000 * timed(lambda: preprocess(n), 5), 2) for n in (1, max(batches))}
    inputs = preprocess(1).to(engine.device)
    with torch.inference_mode():
        def vit():
            model.model.get_image_features(inputs["pixel_values"].to(engine.dtype), inputs["image_grid_thw"])
            torch.cuda.synchronize()
        vit()
        result["vit_ms_one_strip"] = round(1000 * timed(vit, 10), 2)
    return result, engine


def variant_options(variant: str) -> dict:
    """``dynamic``, ``static``, ``graphs``; ``-compile`` appended adds compile=True, ``-fp8`` the FP8 ViT."""
    cache, *extras = variant.split("-")
    return {"cache": cache, "compile": "compile" in extras, "fp8": "fp8" in extras}


def phases(engine, strips: list[np.ndarray], batches: list[int], prompt: str) -> dict:
    """Where one call's time goes in the graphs path (synchronised marks; mean of 3 calls), ms per call."""
    decoder = engine._decoder
    out = {}
    for batch in (batches[0], batches[-1]):
        decoder.timings = {}
        for _ in range(3):
            engine.generate_batch(strips[:batch], prompt)
        out[batch] = {phase: round(1000 * t / 3, 1) for phase, t in decoder.timings.items()}
    decoder.timings = None
    print(f"  phases, ms per call: {out}", flush=True)
    return out


def vit_grouped(engine, strips: list[np.ndarray]) -> dict:
    """ms per strip of the graphs path's ViT (one attention call for all equal-shape strips), incl. patchify."""
    import torch

    decoder = engine._decoder
    out = {}
    for n in (1, min(len(strips), decoder.max_batch)):
        def vit():
            decoder.vision_features(*decoder.pixels(strips[:n]))
            torch.cuda.synchronize()
        with torch.inference_mode():
            vit()
            out[n] = round(1000 * timed(vit, 5) / n, 2)
    if decoder.vit_fp8:  # how far the FP8 ViT's features are from the bf16 path's, same weights
        quantised = decoder.vit_fp8
        with torch.inference_mode():
            pixels = decoder.pixels(strips[:8])
            ours = decoder.vision_features(*pixels).float()
            decoder.vit_fp8 = []
            theirs = decoder.vision_features(*pixels).float()
            decoder.vit_fp8 = quantised
        out["fp8_rel_err_vs_bf16"] = round(float((ours - theirs).norm() / theirs.norm()), 5)
    print(f"  ViT + patchify, ms per strip: {out}", flush=True)
    return out


def mixed_crops(n: int, seed: int, min_pixels: int = 512 * 512, max_pixels: int = 2048 * 2048) -> list[np.ndarray]:
    """Tight subtitle crops as the pipeline sends them: 64-160 x 480-1920 px, then sized to the model's grid and limits."""
    rng = np.random.default_rng(seed)
    sizes = [grid_size(32 * int(rng.integers(2, 6)), 32 * int(rng.integers(15, 61)), min_pixels, max_pixels) for _ in range(n)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]


def mixed_batch(engine, prompt: str) -> dict:
    """32 crops of assorted sizes per call: first call (new shapes) vs steady state; no recompilation expected."""
    limits = engine.settings.min_pixels, engine.settings.max_pixels
    crops = mixed_crops(32, 3, *limits)
    start = time.perf_counter()
    engine.generate_batch(crops, prompt)
    first_s = time.perf_counter() - start
    seconds = timed(lambda: engine.generate_batch(crops, prompt), 3)
    fresh = mixed_crops(32, 4, *limits)  # other sizes again
    start = time.perf_counter()
    engine.generate_batch(fresh, prompt)
    fresh_s = time.perf_counter() - start
    lone = mixed_crops(1, 5, *limits)  # one crop of a size not seen yet (a new attention plan), then again
    start = time.perf_counter()
    engine.generate_batch(lone, prompt)
    lone_first_s = time.perf_counter() - start
    lone_s = timed(lambda: engine.generate_batch(lone, prompt), 5)
    row = {"crops": 32, "first_call_s": round(first_s, 3), "seconds": round(seconds, 4),
           "strips_per_s": round(32 / seconds, 1), "new_sizes_call_s": round(fresh_s, 3),
           "one_new_size_first_s": round(lone_first_s, 3), "one_new_size_again_s": round(lone_s, 4)}
    print(f"  graphs   mixed 32: {1000 * seconds:8.1f} ms/call  {32 / seconds:7.1f} crops/s (first {first_s:.2f} s, "
          f"32 new sizes {fresh_s:.2f} s; one crop of a new size {lone_first_s:.3f} s, then {lone_s:.3f} s)", flush=True)
    return row


def check_answers(checkpoint: Path, engine, crops: list[np.ndarray], tokens: int) -> dict:
    """Token agreement of the graphs loop (batched) with plain generate (one crop at a time), same weights.

    bf16 with random weights makes near-ties common, so a late divergence is
    rounding; the first tokens should agree.
    """
    reference = HunyuanTransformersEngine(model=str(checkpoint), max_tokens=tokens, cache="dynamic", compile=False,
                                          batch_size=1)
    reference.load()
    reference._model.generation_config.min_new_tokens = tokens
    prompt = PROMPTS["recognize"]
    ours = engine.generate_batch(crops, prompt)
    theirs = reference.generate_batch(crops, prompt)
    tok = engine._processor.tokenizer
    agree = []
    for a, b in zip(ours, theirs):
        x, y = tok(a.text, add_special_tokens=False)["input_ids"], tok(b.text, add_special_tokens=False)["input_ids"]
        agree.append(next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y))))
    del reference
    row = {"crops": len(crops), "identical": sum(a.text == b.text for a, b in zip(ours, theirs)),
           "tokens_agreeing_before_first_difference": agree}
    print(f"  check: {row}", flush=True)
    return row


def run_extract(engine, video: str, overrides: dict[str, str]) -> dict:
    """The whole pipeline on ``video`` with the benchmark's engine, used as users do (stops at EOS)."""
    import torch

    engine.stop_at_eos = True
    engine._model.generation_config.min_new_tokens = None
    row = pipeline_figures(engine, video, overrides, "generate_batch")
    row |= {"max_tokens": engine.settings.max_tokens, "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)}
    return row


def extract_row(engine, video: str, overrides: dict[str, str]) -> dict:
    """:func:`run_extract`, or the error it ended in (the other figures are kept)."""
    try:
        return run_extract(engine, video, overrides)
    except Exception as exc:
        print(f"extract FAILED {type(exc).__name__}: {exc}"[:2000], flush=True)
        return {"overrides": overrides, "error": f"{type(exc).__name__}: {exc}"[:2000]}


def save(report: dict, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(report, indent=2))


def translate_cost(engine, video: str, overrides: dict, language: str, rounds: int = 3) -> dict:
    """Extraction with image translation against recognition alone, both warm, alternated ``rounds`` times.

    A first run with translation, not timed, brings every crop size of both prompts through the compiled
    kernels once (the first video after a start pays that, and the recognition-only row above did).
    """
    translating = {**overrides, "translate.languages": language, "recognizer.engine": "hunyuan-transformers"}
    extract_row(engine, video, translating)
    plain, both = [], []
    for _ in range(rounds):
        plain.append(extract_row(engine, video, overrides))
        both.append(extract_row(engine, video, translating))
    if any("error" in r for r in plain + both):
        return {"translate": language, "error": next(r["error"] for r in plain + both if "error" in r)}
    ratio = statistics.median(r["wall_s"] for r in both) / statistics.median(r["wall_s"] for r in plain)
    print(f"extract + translation into {language}: {ratio:.3f}x the recognition-only wall time (medians of "
          f"{rounds}, alternated, warm; {both[-1].get('translation')})", flush=True)
    return {"translate": language, "translate_cost_ratio": round(ratio, 3),
            "recognition_wall_s": [r["wall_s"] for r in plain], "translation_wall_s": [r["wall_s"] for r in both],
            "last_translation_run": both[-1]}


def main() -> int:
    parser = argparse.ArgumentParser(description="HunyuanOCR transformers-engine GPU benchmark (random weights)")
    parser.add_argument("--out", default="bench-out/gpu_hunyuan.json")
    parser.add_argument("--checkpoint", default="/tmp/hunyuanocr-random", help="built here if missing")
    parser.add_argument("--variants", default="dynamic,static,graphs,graphs-compile")
    parser.add_argument("--batches", default="1,8,32,64,128")
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--extract", metavar="VIDEO", help="also time the whole pipeline on this video, with the "
                        "last variant's engine (max_tokens = --tokens)")
    parser.add_argument("--extract-translate", metavar="LANG",
                        help="after each --extract run, the same run with image translation into LANG (en or zh), "
                        "and the ratio of their wall times")
    parser.add_argument("--extract-set", action="append", metavar="KEY=VALUE,...",
                        help="config overrides for one --extract run (repeat for several runs on one loaded engine), "
                        "e.g. recognizer.min_confidence=0 (random weights read weakly, so every segment is read "
                        "twice; 0 reads once, like confident reads)")
    parser.add_argument("--quick", action="store_true", help="throughput only: no phases, ViT, mixed sizes or check")
    parser.add_argument("--memory-cap-gib", type=float, default=0.0,
                        help="cap PyTorch's GPU memory (e.g. 24 for a 24 GB card); batches that no longer fit are recorded")
    parser.add_argument("--ready", metavar="FILE", help="touch FILE once the engine is loaded")
    parser.add_argument("--start-after", metavar="FILE", help="load first, then wait for FILE before timing")
    parser.add_argument("--done", metavar="FILE", help="touch FILE when timing is over")
    args = parser.parse_args()

    import torch
    import transformers

    from tiny_checkpoint import build

    if not torch.cuda.is_available():
        print("no CUDA device: this benchmark needs a GPU", file=sys.stderr)
        return 2
    checkpoint = Path(args.checkpoint)
    build_s = 0.0
    if not (checkpoint / "model.safetensors").exists() and not list(checkpoint.glob("model-*.safetensors")):
        start = time.perf_counter()
        build(checkpoint, real_sizes=True, device="cuda", dtype="bfloat16", min_pixels=512 * 512, max_pixels=2048 * 2048)
        build_s = time.perf_counter() - start
    if args.memory_cap_gib:
        torch.cuda.set_per_process_memory_fraction(args.memory_cap_gib * 2**30 / torch.cuda.get_device_properties(0).total_memory)
    rng = np.random.default_rng(0)
    batches = [int(b) for b in args.batches.split(",")]
    strips = [rng.integers(0, 256, (192, 1920, 3), dtype=np.uint8) for _ in range(max(batches))]
    report = {
        "what": "hunyuan-transformers engine, real HunyuanOCR architecture, RANDOM weights, 1920x192 strips, "
                f"{args.tokens} new tokens each, bf16, sdpa",
        "gpu": torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "checkpoint_build_s": round(build_s, 1),
        "memory_cap_gib": args.memory_cap_gib,
        "variants": [],
    }
    print(f"{report['gpu']}, torch {torch.__version__}, transformers {transformers.__version__}", flush=True)
    engine = None
    for variant in filter(None, args.variants.split(",")):
        engine = None  # the previous variant's engine goes before the next one loads
        torch.cuda.empty_cache()
        try:
            row, engine = run_variant(checkpoint, variant, strips, batches, args.tokens, args.repeats, args)
            report["variants"].append(row)
        except Exception as exc:  # keep the other variants' figures
            report["variants"].append({"variant": variant, "error": f"{type(exc).__name__}: {exc}"[:2000]})
            print(f"  {variant}: FAILED {type(exc).__name__}: {exc}"[:2000], flush=True)
        save(report, args.out)  # what was measured survives a later crash or time limit
    if args.extract and engine is not None:
        report["extract"] = []
        for spec in args.extract_set or [""]:
            overrides = dict(item.split("=", 1) for item in spec.split(",") if item.strip())
            row = extract_row(engine, args.extract, overrides)
            report["extract"].append(row)
            if args.extract_translate and "error" not in row:
                report["extract"].append(translate_cost(engine, args.extract, overrides, args.extract_translate))
    if args.done:
        Path(args.done).touch()
    save(report, args.out)
    print("\nvariant   batch   ms/call   ms/strip   strips/s")
    for v in report["variants"]:
        for batch, row in v.get("batches", {}).items():
            print(f"{v['variant']:8s} {batch:6d} {1000 * row['seconds']:9.1f} {row['ms_per_strip']:10.2f} {row['strips_per_s']:10.1f}")
        if "vit_ms_one_strip" in v:
            print(f"{v['variant']:8s} ViT one strip {v['vit_ms_one_strip']} ms; preprocess {v['preprocess_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
