"""Row-wise fused steps of the HunyuanOCR ViT: residual add, LayerNorm, GELU and FP8 quantisation.

Why: between its matmuls a ViT block makes several passes over memory
(residual add, LayerNorm, GELU, and in the FP8 path the per-row scaling). As
separate PyTorch kernels each re-reads the rows; at 256 strips that is about a
tenth of the tower's time. :func:`fused_rows` does them in one pass, a Triton
program per row, on CUDA; elsewhere (the CPU, or no Triton) it runs the same
steps as PyTorch operations, which is also the reference the GPU benchmark
checks the kernel against.

FP8 follows the usual dynamic scheme: e4m3 values, one float32 scale per
activation row and per weight row (output channel), float32 accumulation in
``torch._scaled_mm``.
"""

from __future__ import annotations

from typing import Any

FP8_MAX = 448.0  # the largest finite float8_e4m3fn

try:
    import triton
    import triton.language as tl
except ImportError:  # the CPU wheels of PyTorch come without Triton
    triton = None


def quantize_rows(x: Any, scale_row: bool = False) -> tuple[Any, Any]:
    """``x`` as float8_e4m3fn, each row scaled so its largest magnitude is FP8_MAX, and the scales (float32).

    Scales come as a column (M, 1) for activations, or as a row (1, M) with
    ``scale_row`` for a weight: the layout ``torch._scaled_mm`` takes for its
    second operand (per output channel).
    """
    import torch

    scale = x.abs().amax(-1, keepdim=True).float().clamp(min=1e-12) / FP8_MAX
    quantised = (x.float() / scale).to(torch.float8_e4m3fn)
    return quantised, (scale.reshape(1, -1) if scale_row else scale)


def fp8_linear(x: tuple[Any, Any], weight: tuple[Any, Any], bias: Any, dtype: Any) -> Any:
    """``linear`` on quantised rows: FP8 products, scales and bias applied to the float32 sums.

    Fast accumulation: on an H200 the ViT's products took 11-19 % less time with it,
    and their error against float32 was the same (docs/hunyuan.md).
    """
    import torch

    (xq, x_scale), (wq, w_scale) = x, weight
    return torch._scaled_mm(xq, wq.t(), scale_a=x_scale, scale_b=w_scale, bias=bias, out_dtype=dtype,
                            use_fast_accum=True)


# Below this many rows the Triton kernel's launch cost (tens of microseconds from Python, per call) outweighs
# the memory passes it saves: a one-strip ViT (1,440 rows) was ~1 ms slower with it on an H200.
TRITON_FROM_ROWS = 8192


def fused_rows(x: Any, add: Any = None, norm: tuple[Any, Any, float] | None = None, gelu: str | None = None,
               fp8: bool = False, num_warps: int | None = None) -> tuple[Any, Any]:
    """``total = x + add`` (or ``x``), then ``out`` = total through LayerNorm, GELU and FP8 quantisation, each optional.

    ``norm``: (weight, bias, eps). ``gelu``: "erf" (exact) or "tanh" (the
    approximation). Returns ``(total, out)``; ``out`` is a bf16 (or the input
    dtype) tensor, or with ``fp8`` a pair (rows as float8_e4m3fn, per-row
    scales). Rows are the last dimension of a 2-D ``x``. ``num_warps`` overrides
    the kernel's launch setting (the benchmark's tuning).
    """
    # FP8 always takes the kernel on CUDA: quantising as PyTorch operations costs five kernels, not one.
    if triton is not None and x.is_cuda and (fp8 or x.shape[0] >= TRITON_FROM_ROWS):
        return _fused_rows_triton(x, add, norm, gelu, fp8, num_warps)
    return _fused_rows_torch(x, add, norm, gelu, fp8)


def _fused_rows_torch(x: Any, add: Any, norm: tuple | None, gelu: str | None, fp8: bool) -> tuple[Any, Any]:
    import torch

    total = x if add is None else x + add
    out = total
    if norm is not None:
        weight, bias, eps = norm
        out = torch.nn.functional.layer_norm(out, out.shape[-1:], weight, bias, eps)
    if gelu is not None:
        out = torch.nn.functional.gelu(out, approximate="tanh" if gelu == "tanh" else "none")
    return total, (quantize_rows(out) if fp8 else out)


def _fused_rows_triton(x: Any, add: Any, norm: tuple | None, gelu: str | None, fp8: bool,
                       num_warps: int | None = None) -> tuple[Any, Any]:
    import torch

    x = x.contiguous()
    add = None if add is None else add.contiguous()
    rows, cols = x.shape
    total = torch.empty_like(x) if add is not None else x
    out = torch.empty(x.shape, dtype=torch.float8_e4m3fn if fp8 else x.dtype, device=x.device)
    scales = torch.empty((rows, 1), dtype=torch.float32, device=x.device) if fp8 else out
    act = {"erf": 1, "tanh": 2}.get(gelu or "", 0)
    weight, bias, eps = norm if norm is not None else (x, x, 0.0)
    block = triton.next_power_of_2(cols)
    _rows_kernel[(rows,)](
        x, x if add is None else add, total, weight, bias, out, scales, cols, eps,
        ADD=add is not None, NORM=norm is not None, GELU=act, FP8=fp8, FP8_LARGEST=FP8_MAX,
        # warps per row measured on an H200: 4 best for the 1,152-wide rows, 8 for the 4,304-wide (GELU + FP8)
        BLOCK=block, num_warps=num_warps or min(8, max(4, block // 1024)),
    )
    return total, ((out, scales) if fp8 else out)


if triton is not None:

    @triton.jit
    def _gelu(value, GELU: tl.constexpr):
        """GELU on float32 values: 1 exact (erf), 2 the tanh approximation, 0 none."""
        if GELU == 1:
            value = 0.5 * value * (1.0 + tl.erf(value * 0.7071067811865476))
        if GELU == 2:
            inner = 0.7978845608028654 * (value + 0.044715 * value * value * value)
            value = 0.5 * value * (1.0 + (2.0 * tl.sigmoid(2.0 * inner) - 1.0))  # tanh(u) = 2 sigmoid(2u) - 1
        return value

    @triton.jit
    def _rows_kernel(x_ptr, add_ptr, total_ptr, w_ptr, b_ptr, out_ptr, scale_ptr, cols, eps,
                     ADD: tl.constexpr, NORM: tl.constexpr, GELU: tl.constexpr, FP8: tl.constexpr,
                     FP8_LARGEST: tl.constexpr, BLOCK: tl.constexpr):
        row = tl.program_id(0).to(tl.int64)
        offsets = tl.arange(0, BLOCK)
        inside = offsets < cols
        where = row * cols + offsets
        value = tl.load(x_ptr + where, mask=inside, other=0.0).to(tl.float32)
        if ADD:
            value += tl.load(add_ptr + where, mask=inside, other=0.0).to(tl.float32)
            rounded = value.to(total_ptr.dtype.element_ty, fp_downcast_rounding="rtne")
            tl.store(total_ptr + where, rounded, mask=inside)
            value = rounded.to(tl.float32)  # what follows reads the stored sum, as PyTorch's next op would
        if NORM:
            mean = tl.sum(value, 0) / cols
            centred = tl.where(inside, value - mean, 0.0)
            variance = tl.sum(centred * centred, 0) / cols
            weight = tl.load(w_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
            bias = tl.load(b_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
            value = centred * tl.rsqrt(variance + eps) * weight + bias
        value = _gelu(value, GELU)
        if FP8:
            if NORM or GELU:  # quantise the rounded values, as the separate PyTorch steps do
                value = value.to(x_ptr.dtype.element_ty, fp_downcast_rounding="rtne").to(tl.float32)
            scale = tl.maximum(tl.max(tl.where(inside, tl.abs(value), 0.0), 0), 1e-12) / FP8_LARGEST
            tl.store(scale_ptr + row, scale)
            value = value / scale
        tl.store(out_ptr + where, value.to(out_ptr.dtype.element_ty, fp_downcast_rounding="rtne"), mask=inside)
