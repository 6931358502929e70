"""``hunyuan-transformers``: HunyuanOCR in plain PyTorch, for machines without vLLM.

Crops are read in batches with one ``generate`` call each (left padding,
greedy). Generation runs in a worker thread, one batch at a time (one model,
one device); the pipeline may queue the next batch meanwhile
(``max_inflight`` 2), so crop preparation overlaps the GPU work.
Speed options (see benchmarks/gpu_hunyuan.py for what they are worth):
``cache = "static"`` pre-allocates the KV cache, ``compile = true`` compiles
the decoder step (with a static cache it replays CUDA graphs).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import EngineError
from .hunyuan_common import Answer, HunyuanEngine, HunyuanOptions, chat_messages


@dataclass
class TransformersOptions(HunyuanOptions):
    device: str = "auto"  # "auto" = cuda when available, else cpu
    dtype: str = "auto"  # "auto" = bfloat16 on cuda, float32 on cpu
    attn_implementation: str = "sdpa"
    batch_size: int = 0  # crops per generate call; 0 = 32 on cuda, 4 on cpu
    cache: str = "dynamic"  # "dynamic" or "static" KV cache
    compile: bool = False  # torch.compile the model's forward


class HunyuanTransformersEngine(HunyuanEngine):
    name = "hunyuan-transformers"
    options_class = TransformersOptions
    max_inflight = 2

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.settings: TransformersOptions
        if self.settings.cache not in ("dynamic", "static"):
            raise EngineError(f"engine {self.name!r}: cache must be 'dynamic' or 'static', got {self.settings.cache!r}")
        try:
            import torch
        except ImportError as exc:
            raise EngineError(f"engine {self.name!r} needs PyTorch and transformers: pip install 'subflow[transformers]'") from exc
        device = self.settings.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        dtype = self.settings.dtype
        if dtype == "auto":
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        self.dtype = getattr(torch, dtype, None)
        if not isinstance(self.dtype, torch.dtype):
            raise EngineError(f"engine {self.name!r}: unknown dtype {dtype!r}")
        self.max_batch = self.settings.batch_size or (32 if device.startswith("cuda") else 4)
        self._model: Any = None
        self._processor: Any = None
        self._load_lock = threading.Lock()
        self._run_lock = asyncio.Lock()

    def load(self) -> None:
        """Load processor and model (done on first use; call it to pay the cost up front)."""
        with self._load_lock:
            if self._model is not None:
                return
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
            if s.compile:
                model.forward = torch.compile(model.forward, mode="reduce-overhead", fullgraph=False)
            self._processor, self._model = processor, model

    async def _generate(self, images: list[np.ndarray], prompt: str) -> list[Answer]:
        async with self._run_lock:
            return await asyncio.to_thread(self.generate_batch, images, prompt)

    def generate_batch(self, images: list[np.ndarray], prompt: str) -> list[Answer]:
        """Synchronous batched generation (the benchmark times this directly)."""
        import torch

        self.load()
        text = self._processor.apply_chat_template(
            chat_messages(prompt, {"type": "image"}), tokenize=False, add_generation_prompt=True
        )
        answers: list[Answer] = []
        s = self.sampling
        for start in range(0, len(images), self.max_batch):
            chunk = images[start : start + self.max_batch]
            # Image preprocessing runs on the model's device (the torchvision processor accepts it).
            inputs = self._processor(text=[text] * len(chunk), images=chunk, return_tensors="pt", padding=True, device=self.device)
            inputs = inputs.to(self.device)
            if "pixel_values" in inputs:
                inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
            with torch.inference_mode():
                output = self._model.generate(
                    **inputs,
                    max_new_tokens=s.max_tokens,
                    do_sample=False,
                    repetition_penalty=s.repetition_penalty,
                    cache_implementation="static" if self.settings.cache == "static" else None,
                )
            new = output[:, inputs["input_ids"].shape[1] :]
            eos = self._model.generation_config.eos_token_id
            eos_ids = set(eos if isinstance(eos, list) else [eos])
            for row, decoded in zip(new.tolist(), self._processor.batch_decode(new, skip_special_tokens=True)):
                truncated = len(row) >= s.max_tokens and not eos_ids.intersection(row)
                answers.append(Answer(decoded, truncated=truncated))
        return answers

    def describe(self) -> str:
        return f"hunyuan-transformers ({self.settings.model} on {self.device}, batches of {self.max_batch})"

