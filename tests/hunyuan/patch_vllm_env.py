"""Patch the vLLM CPU test environment's third-party files so HunyuanVL runs there.

Test infrastructure only (see ../shared/notes/vllm-cpu.md). Each patch names
the exact text it replaces: a version change that moves that text fails here,
loudly, instead of silently running unpatched. Re-running is a no-op.

usage: python patch_vllm_env.py   (run with the environment's own python)
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Patch:
    module: str  # the installed module whose file is patched (found without importing it)
    old: str
    new: str
    why: str


_GUARD = "(lambda fn: fn)"
PATCHES = [
    Patch(
        "torchvision._meta_registrations",
        '@torch.library.register_fake("torchvision::nms")\n',
        f'@(torch.library.register_fake("torchvision::nms") if torchvision.extension._has_ops() else {_GUARD})\n',
        "PyPI's torchvision is a CUDA build whose native ops cannot load with the CPU torch",
    ),
    Patch(
        "torchvision._meta_registrations",
        '@torch.library.register_fake("torchvision::qnms")\n',
        f'@(torch.library.register_fake("torchvision::qnms") if torchvision.extension._has_ops() else {_GUARD})\n',
        "same, second unguarded decorator",
    ),
    Patch(
        "vllm._custom_ops",
        "output, x.reshape(-1, dnnl_handler.k), bias, dnnl_handler.handler_tensor",
        "output, x.contiguous().reshape(-1, dnnl_handler.k), bias, dnnl_handler.handler_tensor",
        "oneDNN matmul needs unit stride; HunYuanVL's patch merger feeds it a permuted tensor",
    ),
]


def module_file(name: str) -> Path:
    parent, _, leaf = name.rpartition(".")
    spec = importlib.util.find_spec(parent)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"patch: package {parent} is not installed in {sys.prefix}")
    path = Path(list(spec.submodule_search_locations)[0]) / f"{leaf}.py"
    if not path.is_file():
        raise SystemExit(f"patch: {path} not found")
    return path


def apply(patch: Patch) -> str:
    path = module_file(patch.module)
    text = path.read_text(encoding="utf-8")
    if patch.new in text and patch.old not in text.replace(patch.new, ""):
        return f"already patched: {path}"
    if text.count(patch.old) != 1:
        raise SystemExit(
            f"patch: expected exactly one {patch.old.strip()!r} in {path}, found {text.count(patch.old)}; "
            "the installed version changed: update tests/hunyuan/patch_vllm_env.py"
        )
    path.write_text(text.replace(patch.old, patch.new), encoding="utf-8")
    for cached in path.parent.glob(f"__pycache__/{path.stem}.*.pyc"):
        cached.unlink()
    return f"patched: {path} ({patch.why})"


def main() -> int:
    for patch in PATCHES:
        print(apply(patch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
