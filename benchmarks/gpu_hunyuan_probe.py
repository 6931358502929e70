"""Where the ``hunyuan-transformers`` engine's GPU time goes, piece by piece (real HunyuanOCR sizes, RANDOM weights).

The measurements behind the engine's ViT and prefill choices (docs/hunyuan.md):

- the machine's bf16 matrix ceiling (8192^3 product on random data),
- ViT attention, shape (64, 16, 1440, 72) and (1, 16, 1440, 72) bf16: each SDPA
  backend on contiguous (B, H, L, D) inputs and on the strided views a fused QKV
  projection gives, and PyTorch's packed variable-length flash attention,
- the ViT's and the LLM prefill's linear layers at batch-64 sizes (TFLOP/s),
- with ``--sections fp8``: the ViT's linears as FP8 matmuls against bf16 (64 and
  256 strips), and the engine's fused row steps (residual add, LayerNorm, GELU,
  FP8 scaling) against the same steps as separate PyTorch operations,
- the engine's vision path (:meth:`GraphDecoder.vision_features`) against the
  model's own vision forward: relative error, and ms per strip eager, compiled,
  and with each SDPA backend instead of packed attention,
- the engine's phases at each batch, and the top CUDA kernels of one batch-64
  call and of one decode step (torch.profiler).

Rerun on a GPU machine (builds the random checkpoint if missing)::

    python benchmarks/gpu_hunyuan_probe.py --out bench-out/gpu_hunyuan_probe.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "hunyuan")]

from gpu_hunyuan import mixed_crops  # noqa: E402
from subflow.engines.hunyuan_common import PROMPTS  # noqa: E402
from subflow.engines.hunyuan_transformers import HunyuanTransformersEngine  # noqa: E402


def bench_ms(fn, warmup: int = 25, rep: int = 100) -> float:
    """Median milliseconds of ``fn`` (triton's do_bench: CUDA events, cache flushed between runs)."""
    from triton.testing import do_bench

    return float(do_bench(fn, warmup=warmup, rep=rep, return_mode="median"))


def rel_error(out, ref) -> float:
    return float((out.float() - ref.float()).norm() / ref.float().norm())


def matmul_ceiling() -> dict:
    import torch

    a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    ms = bench_ms(lambda: a @ b)
    return {"ms": round(ms, 3), "tflops": round(2 * 8192**3 / ms / 1e9, 1)}


def attention(batch: int, heads: int = 16, length: int = 1440, dim: int = 72) -> dict:
    """Each SDPA backend and packed varlen flash, on contiguous inputs and on fused-QKV views."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    flops = 4 * batch * heads * length * length * dim
    packed = torch.randn(batch * length, 3, heads, dim, device="cuda", dtype=torch.bfloat16)
    views = [packed[:, i].view(batch, length, heads, dim).transpose(1, 2) for i in range(3)]
    contiguous = [t.contiguous() for t in views]
    with sdpa_kernel(SDPBackend.MATH):
        ref = torch.nn.functional.scaled_dot_product_attention(*(t[:2].float() for t in contiguous))
    rows = {}
    for name, backend in [("flash", SDPBackend.FLASH_ATTENTION), ("efficient", SDPBackend.EFFICIENT_ATTENTION),
                          ("cudnn", SDPBackend.CUDNN_ATTENTION)]:
        for layout, qkv in (("contiguous", contiguous), ("qkv_views", views)):
            def run(qkv=qkv, backend=backend):
                with sdpa_kernel(backend):
                    return torch.nn.functional.scaled_dot_product_attention(*qkv)
            try:
                out = run()
                rows[f"{name}/{layout}"] = {"ms": round(bench_ms(run), 3), "tflops": round(flops / bench_ms(run) / 1e9, 1),
                                            "rel_err": round(rel_error(out[:2], ref), 5)}
            except RuntimeError as exc:
                rows[f"{name}/{layout}"] = {"error": str(exc).splitlines()[0][:200]}
    from torch.nn.attention.varlen import varlen_attn

    starts = torch.arange(0, (batch + 1) * length, length, device="cuda", dtype=torch.int32)
    q, k, v = packed.unbind(1)
    run = lambda: varlen_attn(q, k, v, starts, starts, length, length)  # noqa: E731
    out = run().view(batch, length, heads, dim).transpose(1, 2)
    ms = bench_ms(run)
    rows["varlen_flash/qkv_views"] = {"ms": round(ms, 3), "tflops": round(flops / ms / 1e9, 1),
                                      "rel_err": round(rel_error(out[:2], ref), 5)}
    return rows


def linears() -> dict:
    """The ViT's linears at 64 strips (92,160 patches) and the prefill's at 64 prompts of ~390 tokens."""
    import torch

    shapes = {
        "vit qkv fused 1152->3456": (92160, 1152, 3456), "vit q/k/v/o 1152->1152": (92160, 1152, 1152),
        "vit fc1 1152->4304": (92160, 1152, 4304), "vit fc1 padded 1152->4352": (92160, 1152, 4352),
        "vit fc2 4304->1152": (92160, 4304, 1152), "vit fc2 padded 4352->1152": (92160, 4352, 1152),
        "llm qkv fused 1024->4096": (24960, 1024, 4096), "llm gate_up fused 1024->7168": (24960, 1024, 7168),
        "llm down 3584->1024": (24960, 3584, 1024), "llm o 2048->1024": (24960, 2048, 1024),
    }
    rows = {}
    for name, (m, k, n) in shapes.items():
        x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
        w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5
        b = torch.randn(n, device="cuda", dtype=torch.bfloat16)
        ms = bench_ms(lambda: torch.nn.functional.linear(x, w, b))
        rows[name] = {"ms": round(ms, 3), "tflops": round(2 * m * k * n / ms / 1e9, 1)}
    return rows


def fp8_kernels() -> dict:
    """The ViT's linears as FP8 matmuls against bf16 at 64 and 256 strips, and the fused row steps around them.

    ``torch._scaled_mm`` with per-row activation and per-column weight scales,
    accurate and fast accumulation; the engine's fused row steps
    (``hunyuan_kernels.fused_rows``, Triton) against the same steps as separate
    PyTorch operations: time, and agreement (the residual sum must be equal, FP8
    codes nearly all equal).
    """
    import torch

    from subflow.engines.hunyuan_kernels import _fused_rows_torch, fused_rows, quantize_rows

    rows: dict = {}
    for strips in (64, 256):
        m = 1440 * strips
        for name, (k, n) in {"qkv 1152->3456": (1152, 3456), "o 1152->1152": (1152, 1152),
                             "fc1 1152->4304": (1152, 4304), "fc2 4304->1152": (4304, 1152)}.items():
            x = torch.randn(m, k, device="cuda", dtype=torch.bfloat16)
            w = torch.randn(n, k, device="cuda", dtype=torch.bfloat16) / k**0.5
            b = torch.randn(n, device="cuda", dtype=torch.bfloat16)
            xq, wq = quantize_rows(x), quantize_rows(w, scale_row=True)
            flops = 2 * m * k * n
            ref = torch.nn.functional.linear(x.float(), w.float(), b.float())
            row: dict = {"bf16_ms": bench_ms(lambda: torch.nn.functional.linear(x, w, b))}
            for label, fast in (("fp8_ms", False), ("fp8_fast_accum_ms", True)):
                def mm(fast=fast):
                    return torch._scaled_mm(xq[0], wq[0].t(), scale_a=xq[1], scale_b=wq[1], bias=b,
                                            out_dtype=torch.bfloat16, use_fast_accum=fast)
                row[label] = bench_ms(mm)
                row[label.replace("_ms", "_rel_err")] = round(rel_error(mm(), ref), 5)
            row["bf16_rel_err"] = round(rel_error(torch.nn.functional.linear(x, w, b), ref), 5)
            row = {key: round(v, 4) if isinstance(v, float) else v for key, v in row.items()}
            row["bf16_tflops"] = round(flops / row["bf16_ms"] / 1e9, 1)
            row["fp8_tflops"] = round(flops / row["fp8_ms"] / 1e9, 1)
            rows[f"{strips} strips {name}"] = row
            print(f"  fp8 {strips} strips {name}: {row}", flush=True)
            del x, w, xq, wq, ref
        # the row steps of a block, as the engine runs them (fused) and as separate PyTorch operations
        x = torch.randn(m, 1152, device="cuda", dtype=torch.bfloat16)
        y = torch.randn(m, 1152, device="cuda", dtype=torch.bfloat16)
        f = torch.randn(m, 4304, device="cuda", dtype=torch.bfloat16)
        norm = (torch.randn(1152, device="cuda", dtype=torch.bfloat16), torch.randn(1152, device="cuda", dtype=torch.bfloat16), 1e-6)
        steps = {"add+layernorm": (x, y, norm, None, False), "add+layernorm+fp8": (x, y, norm, None, True),
                 "gelu": (f, None, None, "erf", False), "gelu+fp8": (f, None, None, "erf", True),
                 "fp8 only (attention output)": (x, None, None, None, True)}
        for name, args in steps.items():
            fused_total, fused_out = fused_rows(*args)
            total, out = _fused_rows_torch(*args)
            row = {"separate_ms": round(bench_ms(lambda: _fused_rows_torch(*args)), 4),
                   "fused_ms": round(bench_ms(lambda: fused_rows(*args)), 4),
                   "total_equal": bool(torch.equal(fused_total, total))}
            if args[4]:
                row["fp8_codes_equal"] = round(float((fused_out[0].float() == out[0].float()).float().mean()), 5)
                row["scales_max_rel_diff"] = float(((fused_out[1] - out[1]).abs() / out[1]).max())
            else:
                row["out_rel_err"] = round(rel_error(fused_out, out), 6)
                row["out_max_abs_diff"] = float((fused_out.float() - out.float()).abs().max())
            for warps in (4, 8, 16, 32):
                row[f"fused_ms_{warps}_warps"] = round(bench_ms(lambda: fused_rows(*args, num_warps=warps)), 4)
            rows[f"{strips} strips rows {name}"] = row
            print(f"  rows {strips} strips {name}: {row}", flush=True)
        del x, y, f
    return rows


def vision(engine, strips: list[np.ndarray], crops: list[np.ndarray]) -> dict:
    """The engine's vision path vs the model's own forward; ms per strip with each attention choice."""
    import torch
    from torch.nn.attention import SDPBackend

    decoder = engine._decoder
    out: dict = {}
    with torch.inference_mode():
        for name, images in (("strips", strips[:4]), ("mixed", sorted(crops, key=lambda im: im.shape))):
            pixels, runs = decoder.pixels(images)
            grid = torch.tensor([[1, h, w] for n, h, w in runs for _ in range(n)], device="cuda")
            theirs = decoder.vision(pixels, grid_thw=grid)
            theirs = getattr(theirs, "pooler_output", theirs)
            theirs = theirs[0] if isinstance(theirs, tuple) else theirs
            ours = decoder.vision_features(pixels, runs)
            out[f"rel_err_vs_model_{name}"] = round(rel_error(ours, theirs.reshape(ours.shape)), 5)
        chosen = decoder.sdpa_many, decoder.sdpa_few
        for n in (1, 64, 128):
            if n > len(strips):
                continue
            pixels, runs = decoder.pixels(strips[:n])
            grid = torch.tensor([[1, h, w] for c, h, w in runs for _ in range(c)], device="cuda")
            decoder.vision(pixels, grid_thw=grid)
            row = {"model_forward": bench_ms(lambda: decoder.vision(pixels, grid_thw=grid), 5, 30) / n}
            (count, h, w), = runs
            variants = [("engine", chosen, runs)]
            variants += [(f"sdpa_{b.name.lower()}", ([b], [b]), runs) for b in
                         (SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION)]
            if n > 1:  # the same strips as two runs take the packed varlen path
                variants.append(("varlen_flash", chosen, [(count - 1, h, w), (1, h, w)]))
            for name, (decoder.sdpa_many, decoder.sdpa_few), layout in variants:
                try:
                    decoder.vision_features(pixels, layout)
                    row[name] = bench_ms(lambda: decoder.vision_features(pixels, layout), 5, 30) / n
                except RuntimeError as exc:
                    row[name] = str(exc).splitlines()[0][:200]
            decoder.sdpa_many, decoder.sdpa_few = chosen
            out[f"ms_per_strip_batch_{n}"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}
            print(f"  ViT ms per strip at {n}: {out[f'ms_per_strip_batch_{n}']}", flush=True)
    return out


def profile(engine, strips: list[np.ndarray], prompt: str, out_dir: Path) -> dict:
    """Top CUDA kernels of one generate call at 64 and of one decode step at 64 (outside its graph)."""
    import torch
    from torch.profiler import ProfilerActivity, profile as torch_profile

    tables = {}
    engine.generate_batch(strips[:64], prompt)
    with torch_profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        engine.generate_batch(strips[:64], prompt)
    tables["call_64"] = prof.key_averages().table(sort_by="cuda_time_total", row_limit=30, max_name_column_width=70)
    decoder = engine._decoder
    views = (decoder.tokens[:64], decoder.rope_pos[:64], decoder.slot, decoder.step, decoder.mask[:64],
             [k[:64] for k in decoder.keys], [v[:64] for v in decoder.values], decoder.seen[:64], decoder.out[:64],
             engine.sampling.repetition_penalty)
    with torch.inference_mode():
        decoder.slot.fill_(400)
        decoder.step.fill_(1)
        decoder._decode(*views)
        torch.cuda.synchronize()
        with torch_profile(activities=[ProfilerActivity.CUDA]) as prof:
            for _ in range(5):
                decoder.slot.fill_(400)
                decoder.step.fill_(1)
                decoder._decode(*views)
            torch.cuda.synchronize()
    tables["decode_step_64_x5"] = prof.key_averages().table(sort_by="cuda_time_total", row_limit=25, max_name_column_width=70)
    for name, table in tables.items():
        (out_dir / f"profile_{name}.txt").write_text(table)
        print(f"--- {name}\n" + "\n".join(table.splitlines()[:22]), flush=True)
    return {name: str(out_dir / f"profile_{name}.txt") for name in tables}


def main() -> int:
    parser = argparse.ArgumentParser(description="HunyuanOCR transformers-engine GPU probe (random weights)")
    parser.add_argument("--out", default="bench-out/gpu_hunyuan_probe.json")
    parser.add_argument("--checkpoint", default="/tmp/hunyuanocr-random", help="built here if missing")
    parser.add_argument("--batches", default="1,8,32,64,128", help="engine phases at these batch sizes")
    parser.add_argument("--sections", default="kernels,vision,phases,profile",
                        help="what to run: kernels (matmul, attention, linears), fp8 (FP8 linears and quantisation), "
                             "vision, phases, profile")
    args = parser.parse_args()
    sections = set(args.sections.split(","))

    import torch
    import transformers

    from tiny_checkpoint import build

    checkpoint = Path(args.checkpoint)
    if not (checkpoint / "model.safetensors").exists() and not list(checkpoint.glob("model-*.safetensors")):
        build(checkpoint, real_sizes=True, device="cuda", dtype="bfloat16", min_pixels=512 * 512, max_pixels=2048 * 2048)
    out_dir = Path(args.out).parent
    out_dir.mkdir(parents=True, exist_ok=True)
    report: dict = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "transformers": transformers.__version__}
    print(report, flush=True)
    if "kernels" in sections:
        report["matmul_8192"] = matmul_ceiling()
        print(f"  bf16 8192^3: {report['matmul_8192']}", flush=True)
        report["attention"] = {n: attention(n) for n in (64, 1)}
        for n, rows in report["attention"].items():
            for name, row in rows.items():
                print(f"  attention batch {n:2d} {name:26s} {row}", flush=True)
        report["linears"] = linears()
        for name, row in report["linears"].items():
            print(f"  linear {name:30s} {row}", flush=True)

    if "fp8" in sections:
        report["fp8_kernels"] = fp8_kernels()
    if not sections & {"vision", "phases", "profile"}:
        Path(args.out).write_text(json.dumps(report, indent=2))
        return 0

    batches = [int(b) for b in args.batches.split(",")]
    rng = np.random.default_rng(0)
    size = max(batches)
    strips = [rng.integers(0, 256, (192, 1920, 3), dtype=np.uint8) for _ in range(size)]
    start = time.perf_counter()
    try:
        engine = HunyuanTransformersEngine(model=str(checkpoint), max_tokens=24, batch_size=size,
                                           min_pixels=512 * 512, max_pixels=2048 * 2048)
        engine.load()
    except Exception:  # still measure the rest, uncompiled
        import traceback

        traceback.print_exc()
        report["compile_error"] = traceback.format_exc()[-3000:]
        engine = HunyuanTransformersEngine(model=str(checkpoint), max_tokens=24, batch_size=size,
                                           min_pixels=512 * 512, max_pixels=2048 * 2048, compile=False)
        engine.load()
    report["engine"] = {"cache": engine.cache, "compile": engine.compile, "load_s": round(time.perf_counter() - start, 1)}
    print(f"  engine {report['engine']}", flush=True)
    engine.stop_at_eos = False
    prompt = PROMPTS["recognize"]
    decoder = engine._decoder
    if "vision" in sections:
        report["vision"] = vision(engine, strips, mixed_crops(8, 3))
    report["phases_ms"] = {}
    for n in batches if "phases" in sections else []:
        engine.generate_batch(strips[:n], prompt)
        decoder.timings = {}
        start = time.perf_counter()
        for _ in range(3):
            engine.generate_batch(strips[:n], prompt)
        seconds = (time.perf_counter() - start) / 3
        row = {phase: round(1000 * t / 3, 1) for phase, t in decoder.timings.items()}
        decoder.timings = None
        report["phases_ms"][n] = {**row, "strips_per_s (marks on)": round(n / seconds, 1)}
        print(f"  phases at {n}: {report['phases_ms'][n]}", flush=True)
    if "profile" in sections:
        report["profiles"] = profile(engine, strips, prompt, out_dir)
    Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
