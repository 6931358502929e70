"""``hunyuan-transformers``: HunyuanOCR in plain PyTorch, for machines without vLLM.

Crops are read in batches, greedy. Generation runs in a worker thread, one
batch at a time (one model, one device); the pipeline may queue the next
batch meanwhile (``max_inflight`` 2), so crop preparation overlaps the GPU
work. Generation setups (see benchmarks/gpu_hunyuan.py and docs/hunyuan.md
for what they are worth): ``cache = "graphs"`` (the default on CUDA) runs
subflow's own greedy loop (:class:`GraphDecoder`: fixed KV buffers, each
decode step a CUDA graph that does not depend on the crop size);
``"dynamic"`` (the default on the CPU) and ``"static"`` call transformers'
``generate`` (left padding; ``"static"`` compiles per input shape).
``compile`` (on by default with CUDA) runs the model through torch.compile.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import EngineError
from ..records import Task
from .hunyuan_common import Answer, HunyuanEngine, HunyuanOptions, chat_messages, grid_size
from .hunyuan_kernels import fp8_linear, fused_rows, quantize_rows

log = logging.getLogger(__name__)


@dataclass
class TransformersOptions(HunyuanOptions):
    device: str = "auto"  # "auto" = cuda when available, else cpu
    dtype: str = "auto"  # "auto" = bfloat16 on cuda, float32 on cpu
    attn_implementation: str = "sdpa"
    batch_size: int = 0  # crops per generate call; 0 = 32 on cuda, 4 on cpu
    # "auto" = "graphs" on cuda, "dynamic" on cpu; "dynamic" / "static" (transformers' generate) or "graphs" (own loop)
    cache: str = "auto"
    # torch.compile the model ("graphs": prefill and decode step); "auto" = on for "graphs" on cuda.
    # The first compilation takes ~2 min when the engine loads; inductor caches it on disk.
    compile: str | bool = "auto"
    # ViT linears as FP8 matmuls ("graphs" only; GPUs with FP8 tensor cores: Hopper, Ada): faster, slightly
    # different answers (per-row activation and per-channel weight scales; docs/hunyuan.md has the figures).
    fp8: bool = False


class HunyuanTransformersEngine(HunyuanEngine):
    name = "hunyuan-transformers"
    options_class = TransformersOptions
    max_inflight = 2

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.settings: TransformersOptions
        if self.settings.cache not in ("auto", "dynamic", "static", "graphs"):
            raise EngineError(f"engine {self.name!r}: cache must be 'auto', 'dynamic', 'static' or 'graphs', "
                              f"got {self.settings.cache!r}")
        switch = {"auto": None, True: True, "true": True, "on": True, "1": True,
                  False: False, "false": False, "off": False, "0": False}
        compile_choice = self.settings.compile
        if (compile_choice.lower() if isinstance(compile_choice, str) else compile_choice) not in switch:
            raise EngineError(f"engine {self.name!r}: compile must be 'auto', true or false, got {compile_choice!r}")
        try:
            import torch
        except ImportError as exc:
            raise EngineError(f"engine {self.name!r} needs PyTorch and transformers: pip install 'subflow[transformers]'") from exc
        device = self.settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        cuda = device.startswith("cuda")
        # The fast path by default on a GPU; on the CPU graphs and compilation gain little and cost start-up
        # time. "auto" compiles only the graphs loop: generate() compiled with CUDA graphs ("reduce-overhead")
        # failed on the H200 (torch 2.11, transformers 5.17: a graph output overwritten by the next step),
        # and "static" compiles itself.
        self.cache = ("graphs" if cuda else "dynamic") if self.settings.cache == "auto" else self.settings.cache
        compile_on = switch[compile_choice.lower() if isinstance(compile_choice, str) else compile_choice]
        self.compile = (cuda and self.cache == "graphs") if compile_on is None else compile_on
        if self.settings.fp8 and self.cache != "graphs":
            raise EngineError(f"engine {self.name!r}: fp8 needs cache = 'graphs' (the engine's own ViT path), "
                              f"not {self.cache!r}")
        dtype = self.settings.dtype
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        self.dtype = getattr(torch, dtype, None)
        if not isinstance(self.dtype, torch.dtype):
            raise EngineError(f"engine {self.name!r}: unknown dtype {dtype!r}")
        self.max_batch = self.settings.batch_size or (32 if device.startswith("cuda") else 4)
        self._model: Any = None
        self._processor: Any = None
        self._decoder: GraphDecoder | None = None
        self.stop_at_eos = True  # the benchmark turns this off to time exactly max_tokens steps
        self._load_lock = threading.Lock()
        self._run_lock = asyncio.Lock()

    def load(self) -> None:
        """Load processor and model (done on first use; call it to pay the cost up front).

        With ``cache = "graphs"`` this also captures the decode graphs and, with
        ``compile``, compiles (the first time ~1-2 min; inductor caches it on disk).
        """
        started = time.perf_counter()
        with self._load_lock:
            if self._model is not None:
                return
            self._load()
        if self._decoder is not None and self.compile:  # compile the prefill now, not on the first video
            s = self.settings
            low, high = self._decoder.pixel_limits()  # the processor's own limits may be narrower
            low, high = max(s.min_pixels, low), min(s.max_pixels, high)
            h, w = grid_size(192, 1920, low, max(low, high))
            self.generate_batch([np.zeros((h, w, 3), np.uint8)] * 2, s.prompt(Task()))
        # start-up is most of a short job's time on a GPU: say where it went (-v)
        log.info("engine %s: loaded in %.1f s (%s on %s, cache %s, compile %s)", self.name, time.perf_counter() - started,
                 self.settings.model, self.device, self.cache, "on" if self.compile else "off")

    def _load(self) -> None:
        try:
            import torch
            from transformers import AutoProcessor, HunYuanVLForConditionalGeneration
        except ImportError as exc:
            raise EngineError(f"engine {self.name!r} needs transformers >= 5.13 ({exc}): pip install 'subflow[transformers]'") from exc
        s = self.settings
        revision = s.revision or None
        try:
            processor = AutoProcessor.from_pretrained(s.model, revision=revision)
            model = HunYuanVLForConditionalGeneration.from_pretrained(
                s.model, revision=revision, dtype=self.dtype, attn_implementation=s.attn_implementation
            )
        except OSError as exc:
            raise EngineError(f"engine {self.name!r} cannot load model {s.model!r}: {exc}") from exc
        processor.tokenizer.padding_side = "left"  # decoder-only batches pad on the left
        model = model.to(self.device).eval()
        model.generation_config.pad_token_id = processor.tokenizer.pad_token_id
        if self.compile and self.cache != "graphs":
            model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
        if self.cache == "graphs":
            self._decoder = GraphDecoder(model, processor, self.device, self.dtype, self.max_batch, self.compile,
                                         self.settings.fp8)
            with torch.inference_mode():  # capture every batch bucket now, not during the first video
                self._decoder.warm_up(self.sampling.max_tokens, self.sampling.repetition_penalty)
        self._processor, self._model = processor, model

    async def _generate(self, images: list[np.ndarray], prompt: str) -> list[Answer]:
        async with self._run_lock:
            return await asyncio.to_thread(self.generate_batch, images, prompt)

    def generate_batch(self, images: list[np.ndarray], prompt: str) -> list[Answer]:
        """Synchronous batched generation (the benchmark times this directly)."""
        import torch

        self.load()
        text = self.prompt_text(prompt)
        if self._decoder is not None:
            with torch.inference_mode():
                return self._generate_graphs(images, text)
        answers: list[Answer] = []
        s = self.sampling
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            inputs = self.model_inputs(chunk, text)
            with torch.inference_mode():
                output = self._model.generate(
                    **inputs,
                    max_new_tokens=s.max_tokens,
                    do_sample=False,
                    repetition_penalty=s.repetition_penalty,
                    cache_implementation="static" if self.cache == "static" else None,
                )
            new = output[:, inputs["input_ids"].shape[1] :]
            eos = self._model.generation_config.eos_token_id
            eos_ids = set(eos if isinstance(eos, list) else [eos])
            for row, decoded in zip(new.tolist(), self._processor.batch_decode(new, skip_special_tokens=True)):
                truncated = len(row) >= s.max_tokens and not eos_ids.intersection(row)
                answers.append(Answer(decoded, truncated=truncated))
        return answers

    def prompt_text(self, prompt: str) -> str:
        """The chat-templated prompt for one image (its placeholder is expanded by :meth:`model_inputs`)."""
        self.load()
        return self._processor.apply_chat_template(
            chat_messages(prompt, {"type": "image"}), tokenize=False, add_generation_prompt=True
        )

    def model_inputs(self, images: list[np.ndarray], text: str) -> Any:
        """Token ids (left-padded), pixels and grids for a batch of prepared images, on the model's device."""
        self.load()
        # Image preprocessing runs on the model's device (the torchvision processor accepts it).
        inputs = self._processor(text=[text] * len(images), images=images, return_tensors="pt", padding=True, device=self.device)
        inputs = inputs.to(self.device)
        if "pixel_values" in inputs:
            inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        return inputs

    def _generate_graphs(self, images: list[np.ndarray], text: str) -> list[Answer]:
        """Batches of equal-shape neighbours (sorted by size), answers returned in the callers' order."""
        assert self._decoder is not None
        s = self.sampling
        eos = self._model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos])
        order = sorted(range(len(images)), key=lambda i: images[i].shape)
        answers: list[Answer | None] = [None] * len(images)
        for start in range(0, len(order), self.max_batch):
            chunk = order[start : start + self.max_batch]
            rows = self._decoder.generate([images[i] for i in chunk], text, s.max_tokens, s.repetition_penalty,
                                          eos_ids, self.stop_at_eos)
            for i, row, decoded in zip(chunk, rows, self._processor.batch_decode(rows, skip_special_tokens=True)):
                answers[i] = Answer(decoded, truncated=len(row) >= s.max_tokens and not eos_ids.intersection(row))
        return answers  # type: ignore[return-value]

    def describe(self) -> str:
        return f"hunyuan-transformers ({self.settings.model} on {self.device}, batches of {self.max_batch})"


# ---------------------------------------------------------------- the "graphs" generation path


def _bucket(n: int, limit: int) -> int:
    """The batch size a decode graph is captured for: the next power of two (at most ``limit``), at least 2.

    Never 1: torch.compile specialises size-1 dimensions, which would cost a second compilation.
    """
    size = 2
    while size < n:
        size *= 2
    return min(size, max(limit, n))


class GraphDecoder:
    """Greedy decoding with the KV cache in fixed buffers and each decode step replayed as a CUDA graph.

    Why not ``generate(cache_implementation="static")``: its compiled graphs are
    keyed by the input shape, so every new crop size recompiles for 20-30 s,
    and its per-step Python overhead stays. Here only the decode step is a
    graph, and its shapes depend on the batch bucket (a power of two, at least
    2) and the cache capacity (a multiple of ``CAPACITY_STEP``, grown only for
    an unusually long prompt), never on the crop: the prefill (ViT + prompt)
    runs at whatever size the crops have. Decoding attends over the whole
    capacity with a mask, so the graph's buffers are whole, contiguous rows.
    The ViT runs over all crops of a batch at once (:meth:`vision_features`:
    packed attention, fused QKV projection, position grids cached per size,
    each residual add fused with the LayerNorm after it).
    The prompt (token ids, 4-axis XD-RoPE positions) is built once per crop
    size without calling the processor. Without CUDA the same loop runs
    eagerly (no graphs).
    """

    CAPACITY_STEP = 512
    CUDNN_FROM = 8

    def __init__(self, model: Any, processor: Any, device: str, dtype: Any, max_batch: int, use_compile: bool = False,
                 fp8: bool = False) -> None:
        import torch

        self.torch = torch
        self.model, self.processor, self.device, self.dtype = model, processor, device, dtype
        self.max_batch = max_batch
        self.use_graphs = device.startswith("cuda")
        config = model.config
        text = config.text_config
        self.lm = model.model.language_model
        self.vision = model.model.vision_tower
        self.layers = list(self.lm.layers)
        self.kv_heads = text.num_key_value_heads
        self.heads = text.num_attention_heads
        self.head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
        self.axes = len(text.rope_parameters.get("mrope_section") or [0, 0, 0, 0])
        self.image_token = config.image_token_id
        self.merge = config.vision_config.spatial_merge_size
        self.pad_id = processor.tokenizer.pad_token_id
        from transformers.models.hunyuan_vl import modeling_hunyuan_vl

        self.apply_rope = modeling_hunyuan_vl.apply_rotary_pos_emb
        ip = processor.image_processor
        self.patch = ip.patch_size
        self.temporal = getattr(ip, "temporal_patch_size", 1) or 1
        mean = torch.tensor(ip.image_mean, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        std = torch.tensor(ip.image_std, dtype=torch.float32, device=device).view(1, 3, 1, 1)
        # (x * rescale - mean) / std as one multiply-add on the uint8 values
        self.pixel_scale = float(ip.rescale_factor) / std
        self.pixel_shift = -mean / std
        self.templates: dict[tuple[int, int, str], tuple[Any, Any]] = {}
        self.parts: dict[str, tuple[Any, Any, int]] = {}
        self.graphs: dict[tuple[int, int, int, float], Any] = {}  # (batch, capacity, max_tokens, penalty) -> step
        self.capacity = 0  # cache length the buffers hold
        self.out: Any = None  # answer tokens, written by the decode step
        self.timings: dict[str, float] | None = None  # seconds per phase, when set (benchmark)
        self._last_mark = 0.0
        # Linears that read the same input become one matmul (fewer, larger kernels); the modules keep
        # views of the fused weights, so the model's own forward still works and nothing is stored twice.
        self.qkv = [_fuse([l.self_attn.q_proj, l.self_attn.k_proj, l.self_attn.v_proj]) for l in self.layers]
        self.gate_up = [_fuse([l.mlp.gate_proj, l.mlp.up_proj]) for l in self.layers]
        self.vit_weights = []
        for layer in self.vision.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.vit_weights.append((
                layer.layer_norm1.weight, layer.layer_norm1.bias, *_fuse([attn.q_proj, attn.k_proj, attn.v_proj]),
                attn.o_proj.weight, attn.o_proj.bias, layer.layer_norm2.weight, layer.layer_norm2.bias,
                mlp.fc1.weight, mlp.fc1.bias, mlp.fc2.weight, mlp.fc2.bias,
            ))
        first = self.vision.layers[0]
        self.vit_heads, self.vit_head_dim = first.self_attn.num_heads, first.self_attn.head_dim
        self.vit_eps, self.vit_act = first.layer_norm1.eps, first.mlp.activation_fn
        self.positions: dict[tuple[int, int], Any] = {}  # interpolated position embeddings per patch grid
        # ViT attention on CUDA (head_dim 72; measured on an H200, docs/hunyuan.md): images of several
        # sizes go through packed variable-length flash attention, one call per block for all; images
        # of one size through SDPA, preferring cuDNN's kernel for runs of CUDNN_FROM images or more (25%
        # faster than flash there, which pads 72 to 96) and flash for fewer (cuDNN's host-side cost
        # made a batch-1 ViT 0.7 ms slower).
        self.varlen = _varlen_attention() if self.use_graphs else None
        self.sdpa_many: list = []
        self.sdpa_few: list = []
        if self.use_graphs:
            from torch.nn.attention import SDPBackend

            self.sdpa_few = [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.MATH]
            self.sdpa_many = [SDPBackend.CUDNN_ATTENTION, *self.sdpa_few]
        # torch.compile fuses the ~60 small kernels of each layer (at batch 1 their count, not the
        # arithmetic, sets the step time); shapes are dynamic, so it compiles once, not per bucket.
        # The ViT stays eager: its time is in large matmuls and attention, and compiling its blocks
        # measured no faster at batch 64 and 3 ms slower at batch 1 (docs/hunyuan.md).
        self.compiled = use_compile
        # The FP8 path fuses GELU with the quantisation of its output, so it needs to know which GELU the
        # model uses; another activation runs as is, then is quantised.
        self.vit_gelu = {"gelu": "erf", "gelu_pytorch_tanh": "tanh"}.get(getattr(self.vision.config, "hidden_act", ""))
        # FP8 ViT: each linear's weight quantised once here (the bf16 weights stay for the model's own
        # forward); activations are quantised per row by the fused step that produces them.
        self.vit_fp8: list = []
        if fp8:
            if not hasattr(torch, "float8_e4m3fn") or not hasattr(torch, "_scaled_mm"):
                raise EngineError(f"fp8 needs a PyTorch with float8 matmuls (this is {torch.__version__})")
            for layer_weights in self.vit_weights:
                qkv_w, o_w, fc1_w, fc2_w = (layer_weights[i] for i in (2, 4, 8, 10))
                self.vit_fp8.append(tuple(quantize_rows(w, scale_row=True) for w in (qkv_w, o_w, fc1_w, fc2_w)))
        self._prefill = torch.compile(self.layers_forward, dynamic=True) if use_compile else self.layers_forward
        self._decode = torch.compile(self.decode_step, dynamic=True) if use_compile else self.decode_step

    # ------------------------------------------------------------ prompt per crop shape

    def pixel_limits(self) -> tuple[int, int]:
        """The image processor's own pixel range (a crop outside it would be resized by the processor)."""
        size = self.processor.image_processor.size
        limit = (lambda key: size.get(key)) if isinstance(size, dict) else (lambda key: getattr(size, key, None))
        return int(limit("shortest_edge") or 0), int(limit("longest_edge") or 1 << 62)

    def prompt_parts(self, text: str) -> tuple[Any, Any, int]:
        """Token ids before and after the image span, and the span's extra tokens (begin/end) beyond the grid.

        Read once per prompt from the processor with a reference image, so that a new
        crop size costs no processor call (the pipeline's tight crops are all sizes).
        """
        if text not in self.parts:
            low, _ = self.pixel_limits()
            side = max(2, -(-int(low**0.5) // (self.patch * self.merge))) * self.patch * self.merge
            encoded = self.processor(text=[text], images=[np.zeros((side, side, 3), np.uint8)], return_tensors="pt")
            _, grid_h, grid_w = (int(v) for v in encoded["image_grid_thw"][0])
            ids = encoded["input_ids"][0]
            where = (ids == self.image_token).nonzero().flatten()
            start, end = int(where[0]), int(where[-1]) + 1
            extra = end - start - (grid_h // self.merge) * (grid_w // self.merge + 1)
            if len(where) != end - start or extra not in (0, 2):
                raise EngineError(f"unexpected image token layout from the processor ({len(where)} tokens, grid {grid_h}x{grid_w})")
            self.parts[text] = (ids[:start], ids[end:], extra)
        return self.parts[text]

    def template(self, height: int, width: int, text: str) -> tuple[Any, Any]:
        """Token ids and XD-RoPE positions (axes x tokens) of the prompt for one crop size."""
        key = (height, width, text)
        if key not in self.templates:
            torch = self.torch
            low, high = self.pixel_limits()
            unit = self.patch * self.merge
            if not low <= height * width <= high or height % unit or width % unit:
                raise EngineError(f"a {width}x{height} crop is off the model's grid or pixel range {low}-{high}: "
                                  "keep min_pixels/max_pixels within the model's")
            before, after, extra = self.prompt_parts(text)
            rows, cols = height // unit, width // unit + 1  # +1: the newline token per row
            span = torch.full((rows * cols + extra,), self.image_token, dtype=before.dtype)
            ids = torch.cat([before, span, after])
            positions = torch.arange(len(ids)).expand(self.axes, -1).clone()
            # Image tokens: (width, height, image index) on the last three axes, the first axes sequential.
            start = len(before) + extra // 2  # the begin/end tokens around the grid keep sequential positions
            y, x = torch.meshgrid(torch.arange(rows), torch.arange(cols), indexing="ij")
            positions[self.axes - 3, start : start + rows * cols] = x.flatten()
            positions[self.axes - 2, start : start + rows * cols] = y.flatten()
            positions[self.axes - 1, start : start + rows * cols] = 0
            self.templates[key] = (ids, positions)
        return self.templates[key]

    def pixels(self, images: list[np.ndarray]) -> tuple[Any, list[tuple[int, int, int]]]:
        """Patch rows and the runs of equal shapes (images, patch rows, patch columns) for images sorted by shape.

        Computed on the device.
        """
        torch = self.torch
        chunks, runs = [], []
        i = 0
        while i < len(images):
            j = i
            while j < len(images) and images[j].shape == images[i].shape:
                j += 1
            # One copy into page-locked memory, then an asynchronous upload.
            host = torch.empty((j - i, *images[i].shape), dtype=torch.uint8, pin_memory=self.use_graphs)
            staging = host.numpy()
            for k in range(i, j):
                staging[k - i] = images[k]
            stack = host.to(self.device, non_blocking=True)
            x = stack.permute(0, 3, 1, 2).float() * self.pixel_scale + self.pixel_shift
            n, c, h, w = x.shape
            p, m = self.patch, self.merge
            x = x.reshape(n, c, h // p // m, m, p, w // p // m, m, p).permute(0, 2, 3, 5, 6, 1, 4, 7)
            x = x.unsqueeze(6).expand(-1, -1, -1, -1, -1, -1, self.temporal, -1, -1)
            chunks.append(x.reshape(n * (h // p) * (w // p), c * self.temporal * p * p))
            runs.append((n, h // p, w // p))
            i = j
        return torch.cat(chunks).to(self.dtype), runs

    # ------------------------------------------------------------ the vision tower

    def position(self, rows: int, cols: int) -> Any:
        """The learned position grid interpolated to ``rows x cols`` patches (kept for the latest 64 grids)."""
        key = (rows, cols)
        if key not in self.positions:
            if len(self.positions) >= 64:
                self.positions.pop(next(iter(self.positions)))
            embed = self.vision.embeddings
            self.positions[key] = embed.interpolate_pos_encoding(embed.patch_embedding.weight, rows, cols)[0]
        return self.positions[key]

    def vision_features(self, pixels: Any, runs: list[tuple[int, int, int]]) -> Any:
        """The vision tower's output (image tokens in the text width, image after image) for runs of equal shapes.

        The same modules and weights as the tower's own forward, batched: the patch
        convolution as one matmul, position grids interpolated once per size, the
        blocks over all images at once, the patch merger once per run.
        """
        torch = self.torch
        embed = self.vision.embeddings.patch_embedding
        x = torch.nn.functional.linear(pixels, embed.weight.flatten(1), embed.bias)
        positions = torch.cat([self.position(h, w).expand(n, -1, -1).flatten(0, 1) for n, h, w in runs])
        layout: Any = [(n, h * w) for n, h, w in runs]
        if self.varlen is not None and len(runs) > 1:
            lengths = torch.tensor([h * w for n, h, w in runs for _ in range(n)], dtype=torch.int32)
            starts = torch.nn.functional.pad(lengths.cumsum(0, dtype=torch.int32), (1, 0))
            layout = (starts.to(self.device, non_blocking=True), max(h * w for _, h, w in runs))
        blocks = self.vit_weights
        x, h = self.vit_rows(x, positions, blocks[0][:2])  # position embeddings, the first block's LayerNorm
        for i, weights in enumerate(blocks):
            # each block ends with the next one's LayerNorm, fused with its residual add
            x, h = self.vit_block(x, h, weights, layout, self.vit_fp8[i] if self.vit_fp8 else None,
                                  blocks[i + 1][:2] if i + 1 < len(blocks) else None)
        out, start = [], 0
        for n, h, w in runs:
            merged = self.vision.patch_merger(x[start : start + n * h * w].view(n, h * w, -1), size=(h, w))
            out.append(merged.flatten(0, 1))
            start += n * h * w
        return torch.cat(out)

    def vit_block(self, x: Any, h: Any, weights: tuple, layout: Any, fp8: tuple | None,
                  next_norm: tuple | None) -> tuple[Any, Any]:
        """One ViT block on the patches of all images (rows of ``x``; ``h``: their first LayerNorm).

        Returns the block's output and, when ``next_norm`` (weight, bias) is given,
        the next block's LayerNorm of it. ``layout``: (images, patches each) per run
        of equal shapes, or packed-attention offsets and the longest image
        (``(starts, longest)``, several sizes on CUDA). ``fp8``: the block's
        quantised weights (QKV, output, fc1, fc2), to run its linears in FP8.
        """
        _, _, qkv_w, qkv_b, o_w, o_b, ln2_w, ln2_b, fc1_w, fc1_b, fc2_w, fc2_b = weights
        q8 = fp8 or (None,) * 4
        a = self.vit_attention(self.vit_linear(h, qkv_w, qkv_b, q8[0]), layout)
        a = a.reshape(-1, self.vit_heads * self.vit_head_dim)
        if fp8:
            a = fused_rows(a, fp8=True)[1]
        x, h = self.vit_rows(x, self.vit_linear(a, o_w, o_b, q8[1]), (ln2_w, ln2_b))
        f = self.vit_linear(h, fc1_w, fc1_b, q8[2])
        if fp8 is None:
            f = self.vit_act(f)  # PyTorch's own GELU kernel: a fused one measured 2x slower at this width
        else:  # a GELU the kernel knows is fused with the quantisation; another activation runs first
            f = fused_rows(f if self.vit_gelu else self.vit_act(f), gelu=self.vit_gelu, fp8=True)[1]
        return self.vit_rows(x, self.vit_linear(f, fc2_w, fc2_b, q8[3]), next_norm)

    def vit_rows(self, x: Any, add: Any, norm: tuple | None) -> tuple[Any, Any]:
        """``x + add`` and its LayerNorm (quantised for the FP8 path), in one pass over the rows."""
        layer_norm = None if norm is None else (*norm, self.vit_eps)
        return fused_rows(x, add, layer_norm, fp8=bool(self.vit_fp8) and norm is not None)

    def vit_linear(self, x: Any, weight: Any, bias: Any, quantised: tuple | None) -> Any:
        """A ViT linear layer: bf16, or FP8 when its weight was quantised (``x`` is then quantised rows)."""
        if quantised is None:
            return self.torch.nn.functional.linear(x, weight, bias)
        return fp8_linear(x, quantised, bias, self.dtype)

    def vit_attention(self, qkv: Any, layout: Any) -> Any:
        """Multi-head self-attention of each image's patches, from the fused QKV projection's rows."""
        torch = self.torch
        heads, dim = self.vit_heads, self.vit_head_dim
        q, k, v = qkv.view(-1, 3, heads, dim).unbind(1)
        if isinstance(layout, tuple):
            starts, longest = layout
            a = self.varlen(q, k, v, starts, starts, longest, longest)
        else:
            parts, start = [], 0
            for n, length in layout:
                group = [t[start : start + n * length].view(n, length, heads, dim).transpose(1, 2) for t in (q, k, v)]
                with _sdpa_backends(self.sdpa_many if n >= self.CUDNN_FROM else self.sdpa_few):
                    out = torch.nn.functional.scaled_dot_product_attention(*group, scale=dim**-0.5)
                parts.append(out.transpose(1, 2).reshape(n * length, heads, dim))
                start += n * length
            a = parts[0] if len(parts) == 1 else torch.cat(parts)
        return a

    # ------------------------------------------------------------ buffers and graphs

    def ensure_capacity(self, length: int) -> None:
        torch = self.torch
        if length <= self.capacity:
            return
        self.graphs.clear()
        self.capacity = -(-length // self.CAPACITY_STEP) * self.CAPACITY_STEP  # a new capacity drops the graphs
        b, cap = self.max_batch, self.capacity
        shape = (b, self.kv_heads, cap, self.head_dim)
        self.keys = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
        self.values = [torch.zeros(shape, dtype=self.dtype, device=self.device) for _ in self.layers]
        self.mask = torch.zeros((b, 1, 1, cap), dtype=torch.bool, device=self.device)
        self.tokens = torch.zeros(b, dtype=torch.long, device=self.device)
        self.rope_pos = torch.zeros(b, dtype=torch.long, device=self.device)
        self.slot = torch.zeros(1, dtype=torch.long, device=self.device)
        self.step = torch.zeros(1, dtype=torch.long, device=self.device)
        self.seen = torch.zeros((b, self.lm.config.vocab_size), dtype=torch.bool, device=self.device)
        positions = torch.arange(cap, device=self.device).view(1, 1, -1).expand(self.axes, 1, -1)
        probe = torch.zeros(1, dtype=self.dtype, device=self.device)
        cos, sin = self.lm.rotary_emb(probe, positions)  # text positions: all axes equal
        self.cos, self.sin = cos[0], sin[0]

    def decoder_graph(self, batch: int, max_tokens: int, penalty: float) -> Any:
        key = (batch, self.capacity, max_tokens, penalty)
        if key in self.graphs:
            return self.graphs[key]
        torch = self.torch
        if self.out is None or self.out.shape[1] < max_tokens:
            self.graphs.clear()  # captured graphs write into the old buffer
            self.out = torch.zeros((self.max_batch, max_tokens), dtype=torch.long, device=self.device)
        views = (
            self.tokens[:batch], self.rope_pos[:batch], self.slot, self.step, self.mask[:batch],
            [k[:batch] for k in self.keys], [v[:batch] for v in self.values],
            self.seen[:batch], self.out[:batch], penalty,
        )
        run = lambda: self._decode(*views)  # noqa: E731
        if not self.use_graphs:
            self.graphs[key] = run
            return run
        for buffer in (self.slot, self.step, self.tokens, self.rope_pos):
            buffer.zero_()  # warm-up steps must index inside the buffers
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                run()
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            run()
        self.graphs[key] = graph.replay
        return graph.replay

    def warm_up(self, max_tokens: int, penalty: float, prompt_len: int = 400) -> None:
        """Capture the decode graphs of every batch bucket for prompts up to ``prompt_len`` tokens."""
        self.ensure_capacity(prompt_len + max_tokens)
        batch = 1
        while True:
            self.decoder_graph(_bucket(batch, self.max_batch), max_tokens, penalty)
            if batch >= self.max_batch:
                break
            batch *= 2

    # ------------------------------------------------------------ the model, layer by layer

    def attend(self, q: Any, k: Any, v: Any, mask: Any) -> Any:
        """Grouped-query attention without copying K/V.

        Prefill (``mask`` None): causal with no mask tensor, so SDPA can take a fused kernel
        (cuDNN's on the H200); prompts are right-padded, so a real token never sees
        padding. Decode: each KV head's
        query heads become extra query rows under the cache mask.
        """
        torch = self.torch
        b, _, t, d = q.shape
        if mask is None:
            out = torch.nn.functional.scaled_dot_product_attention(
                q, k, v, is_causal=True, scale=self.head_dim**-0.5, enable_gqa=True)
            return out.transpose(1, 2).reshape(b, t, self.heads * d)
        q = q.reshape(b, self.kv_heads, (self.heads // self.kv_heads) * t, d)
        out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=self.head_dim**-0.5)
        return out.reshape(b, self.heads, t, d).transpose(1, 2).reshape(b, t, self.heads * d)

    def layers_forward(self, x: Any, cos: Any, sin: Any, mask: Any, cache: Any = None) -> tuple[Any, list]:
        """The decoder stack.

        Prefill (no ``cache``): returns the final hidden states and every layer's
        new keys/values. Decode (``cache = (keys, values, slot)``, per-layer buffer
        views): writes the new keys/values at ``slot`` and attends over the buffers.
        """
        torch = self.torch
        b, t, _ = x.shape
        new = []
        split = [self.heads * self.head_dim, self.kv_heads * self.head_dim, self.kv_heads * self.head_dim]
        for i, layer in enumerate(self.layers):
            attn, mlp = layer.self_attn, layer.mlp
            h = layer.input_layernorm(x)
            q, k, v = (part.view(b, t, -1, self.head_dim).transpose(1, 2)
                       for part in torch.nn.functional.linear(h, *self.qkv[i]).split(split, -1))
            q, k = self.apply_rope(q, k, cos, sin)
            q, k = attn.query_layernorm(q), attn.key_layernorm(k)
            if cache is None:
                new.append((k, v))
            else:
                keys, values, slot = cache[0][i], cache[1][i], cache[2]
                keys.index_copy_(2, slot, k)
                values.index_copy_(2, slot, v)
                k, v = keys, values
            x = x + attn.o_proj(self.attend(q, k, v, mask))
            gate, up = torch.nn.functional.linear(layer.post_attention_layernorm(x), *self.gate_up[i]).chunk(2, -1)
            x = x + mlp.down_proj(mlp.act_fn(gate) * up)
        return self.lm.norm(x), new

    def next_token(self, hidden: Any, seen: Any, penalty: float) -> Any:
        torch = self.torch
        logits = self.model.lm_head(hidden).float()
        if penalty != 1.0:  # transformers' RepetitionPenaltyLogitsProcessor, over prompt and answer tokens
            logits = torch.where(seen, torch.where(logits < 0, logits * penalty, logits / penalty), logits)
        return logits.argmax(-1)

    def decode_step(self, tokens: Any, rope_pos: Any, slot: Any, step: Any, mask: Any, keys: list, values: list,
                    seen: Any, out: Any, penalty: float) -> None:
        """One token for every row; only in-place updates of the fixed buffers it is given (graph-safe)."""
        mask.index_fill_(3, slot, True)
        x = self.lm.embed_tokens(tokens[:, None])
        cos = self.cos.index_select(0, rope_pos)[:, None]
        sin = self.sin.index_select(0, rope_pos)[:, None]
        hidden, _ = self.layers_forward(x, cos, sin, mask, (keys, values, slot))
        token = self.next_token(hidden[:, 0], seen, penalty)
        out.index_copy_(1, step, token[:, None])
        seen.scatter_(1, token[:, None], True)
        tokens.copy_(token)
        rope_pos.add_(1)
        slot.add_(1)
        step.add_(1)

    # ------------------------------------------------------------ one batch

    def mark(self, phase: str | None) -> None:
        """Add the time since the last mark to ``timings[phase]`` (only when the benchmark sets ``timings``)."""
        if self.timings is None:
            return
        if self.use_graphs:
            self.torch.cuda.synchronize()
        now = time.perf_counter()
        if phase is not None:
            self.timings[phase] = self.timings.get(phase, 0.0) + now - self._last_mark
        self._last_mark = now

    def generate(self, images: list[np.ndarray], text: str, max_tokens: int, penalty: float,
                 eos_ids: set[int], stop_at_eos: bool = True) -> list[list[int]]:
        """Token ids answered for each image (images sorted by shape; at most ``max_batch``)."""
        torch = self.torch
        n = len(images)
        self.mark(None)
        rows = [self.template(im.shape[0], im.shape[1], text) for im in images]
        prompt_len = max(len(ids) for ids, _ in rows)
        batch = _bucket(n, self.max_batch)
        self.ensure_capacity(prompt_len + max_tokens)
        replay = self.decoder_graph(batch, max_tokens, penalty)  # captured before the prefill fills the cache

        ids = torch.full((n, prompt_len), self.pad_id, dtype=torch.long)
        positions = torch.zeros((self.axes, n, prompt_len), dtype=torch.long)
        valid = torch.zeros((n, prompt_len), dtype=torch.bool)
        last = torch.zeros(n, dtype=torch.long)  # each prompt's last token (prompts are right-padded)
        for r, (row_ids, row_pos) in enumerate(rows):
            ids[r, : len(row_ids)] = row_ids
            positions[:, r, : len(row_ids)] = row_pos
            valid[r, : len(row_ids)] = True
            last[r] = len(row_ids) - 1
        ids, positions, valid, last = (t.to(self.device, non_blocking=True) for t in (ids, positions, valid, last))

        self.mark("prepare")
        # Prefill: ViT, then the prompt (causal attention; padding only after each prompt).
        features = self.vision_features(*self.pixels(images))
        self.mark("vit")
        x = self.lm.embed_tokens(ids)
        image_mask = (ids == self.image_token).unsqueeze(-1).expand_as(x)
        x = x.masked_scatter(image_mask, features.to(x.dtype))
        cos, sin = self.lm.rotary_emb(x, positions)
        if self.compiled and n == 1:  # as in _bucket: no size-1 specialisation, no second compilation
            x, cos, sin = (t.repeat(2, *[1] * (t.dim() - 1)) for t in (x, cos, sin))
        hidden, new = self._prefill(x, cos, sin, None)
        for i, (k, v) in enumerate(new):
            self.keys[i][:n, :, :prompt_len] = k[:n]
            self.values[i][:n, :, :prompt_len] = v[:n]
        seen = self.seen[:batch]
        seen.zero_()
        seen[:n].scatter_(1, ids, True)
        first = self.next_token(hidden[torch.arange(n, device=self.device), last], seen[:n], penalty)

        self.mark("prefill")
        # Decode state for the graph; rows past n are idle (they attend to their own slot only).
        self.mask[:batch].zero_()
        self.mask[:n, 0, 0, :prompt_len] = valid
        self.tokens[:batch].fill_(self.pad_id)
        self.tokens[:n] = first
        self.rope_pos[:batch].zero_()
        self.rope_pos[:n] = valid.sum(1)
        seen[:n].scatter_(1, first[:, None], True)
        self.out[:n, 0] = first
        self.slot.fill_(prompt_len)
        self.step.fill_(1)
        eos = torch.tensor(sorted(eos_ids), device=self.device)
        done = max_tokens
        for step in range(1, max_tokens):
            replay()
            if stop_at_eos and step % 8 == 0 and bool(torch.isin(self.out[:n, : step + 1], eos).any(1).all()):
                done = step + 1  # every row has ended: skip the remaining steps
                break
        answer = self.out[:n, :done].tolist()
        self.mark("decode")
        cut = []
        for row in answer:
            stop = next((i for i, tok in enumerate(row) if tok in eos_ids), None)
            cut.append(row if stop is None else row[: stop + 1])
        return cut


def _fuse(linears: list) -> tuple[Any, Any]:
    """One weight (and bias) for linears that read the same input; each module gets a view of its rows."""
    import torch

    weight = torch.cat([m.weight.detach() for m in linears])
    bias = None if linears[0].bias is None else torch.cat([m.bias.detach() for m in linears])
    start = 0
    for m in linears:
        rows = slice(start, start + m.weight.shape[0])
        m.weight = torch.nn.Parameter(weight[rows], requires_grad=False)
        if bias is not None:
            m.bias = torch.nn.Parameter(bias[rows], requires_grad=False)
        start = rows.stop
    return weight, bias


def _sdpa_backends(backends: list) -> Any:
    """SDPA restricted to ``backends`` in that order of preference (no restriction when empty)."""
    import contextlib

    from torch.nn.attention import sdpa_kernel

    return sdpa_kernel(backends, set_priority=True) if backends else contextlib.nullcontext()


def _varlen_attention() -> Any:
    """PyTorch's packed variable-length flash attention (torch >= 2.10), or None where it is missing."""
    try:
        from torch.nn.attention.varlen import varlen_attn
    except ImportError:
        return None
    return varlen_attn
