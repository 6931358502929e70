"""``hunyuan``: HunyuanOCR served by vLLM's async engine inside this process.

Every crop is its own request and all of them are in flight at once, so
vLLM's continuous batching packs crops from many frames (and many streams
sharing this engine) into each step. The engine is built on first use, on the
event loop that calls it (AsyncLLM's output handler lives on that loop).
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
from dataclasses import dataclass, field
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


class _PeakRunning:
    """Largest number of requests vLLM's scheduler ran in one step: proof that crops were batched."""

    peak = 0

    def factory(self, vllm_config: Any, engine_index: int = 0) -> Any:
        from vllm.v1.metrics.loggers import StatLoggerBase

        holder = self

        class Logger(StatLoggerBase):
            def __init__(self, vllm_config: Any, engine_index: int = 0) -> None:
                pass

            def record(self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None, engine_idx: int = 0) -> None:
                if scheduler_stats is not None:
                    holder.peak = max(holder.peak, scheduler_stats.num_running_reqs)

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

    def engine_args(self) -> Any:
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
        args.update(s.engine_args)
        try:
            return AsyncEngineArgs(**args)
        except TypeError as exc:
            raise EngineError(f"engine 'hunyuan': bad engine_args: {exc}") from exc

    async def _start(self) -> None:
        async with self._start_lock:
            if self._llm is not None:
                return
            from vllm.v1.engine.async_llm import AsyncLLM

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

    async def _one(self, image: np.ndarray, text: str) -> Answer:
        from PIL import Image
        from vllm import SamplingParams

        s = self.sampling
        params = SamplingParams(
            temperature=s.temperature,
            top_p=s.top_p,
            top_k=s.top_k,
            repetition_penalty=s.repetition_penalty,
            max_tokens=s.max_tokens,
            skip_special_tokens=True,
        )
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

    async def aclose(self) -> None:
        if self._llm is not None:
            self._llm.shutdown()
            self._llm = None

    def describe(self) -> str:
        return f"hunyuan (vLLM in-process, {self.settings.model}, up to {self.settings.max_num_seqs} crops in flight)"
