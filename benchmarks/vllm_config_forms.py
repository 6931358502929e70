"""How the installed vLLM reads HunyuanOCR's config.json, in each form a checkpoint may have it.

For three forms of the same checkpoint (the published flat 1.0 layout, a
1.5-like layout with a nested ``text_config`` beside the flat keys, and what
transformers 5's ``save_pretrained`` writes) it builds vLLM's ``ModelConfig``
with and without the ``hunyuan`` engine's adjustments for this release, and
prints what vLLM made of it: the architecture, the runner, M-RoPE or XD-RoPE,
the image start token. Only config files are read (no weights, no GPU)::

    python benchmarks/vllm_config_forms.py CHECKPOINT_DIR [--out forms.json]

CHECKPOINT_DIR is one built by tests/hunyuan/tiny_checkpoint.py (any sizes).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests" / "hunyuan")]

from subflow.engines.hunyuan import installed_vllm, vllm_adjustments  # noqa: E402

TEXT_KEYS = ("vocab_size", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
             "num_key_value_heads", "head_dim", "hidden_act", "max_position_embeddings", "rms_norm_eps",
             "bos_token_id", "eos_token_id", "pad_token_id", "tie_word_embeddings")


def forms(published: dict) -> dict[str, dict]:
    """The checkpoint's config in each form (the weights would be the same)."""
    from tiny_checkpoint import build_config

    section = published["rope_scaling"]["xdrope_section"]
    text = {key: published[key] for key in TEXT_KEYS} | {
        "model_type": "hunyuan_vl_text",
        "rope_parameters": {"rope_type": "xdrope", "type": "xdrope", "alpha": 1000.0, "rope_theta": 10000.0,
                            "xdrope_section": section},
    }
    sizes = {"text": {key: published[key] for key in ("hidden_size", "intermediate_size", "num_hidden_layers",
                                                      "num_attention_heads", "num_key_value_heads", "head_dim")}
             | {"mrope_section": section},
             "vision": {key: published["vision_config"][key] for key in ("hidden_size", "intermediate_size",
                                                                        "num_hidden_layers", "num_attention_heads",
                                                                        "max_image_size")}}
    saved = build_config(sizes).to_dict()
    saved["architectures"] = published["architectures"]
    return {"published-1.0-flat": published, "1.5-like-nested-plus-flat": published | {"text_config": text},
            "transformers5-save_pretrained": saved}


def resolve(directory: Path, overrides: dict) -> dict:
    from vllm.config import ModelConfig

    try:
        config = ModelConfig(model=str(directory), max_model_len=1024, **overrides)
    except Exception as exc:  # noqa: BLE001 - the failure is the finding
        return {"error": f"{type(exc).__name__}: {exc}"[:400]}
    hf = config.hf_config
    return {"architectures": config.architectures, "model_class": getattr(config, "_architecture", None),
            "runner": config.runner_type, "uses_mrope": bool(config.uses_mrope),
            "uses_xdrope_dim": getattr(config, "uses_xdrope_dim", None),
            "image_start_token_id": getattr(hf, "image_start_token_id", None)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoint")
    parser.add_argument("--out")
    args = parser.parse_args()
    source = Path(args.checkpoint)
    version, native = installed_vllm()
    adjusted: dict = {}
    for adjustment in vllm_adjustments(native):
        adjusted |= adjustment.args
    report = {"vllm": version, "native_hunyuan_vl": native, "adjustment_args": adjusted, "forms": {}}
    published = json.loads((source / "config.json").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in forms(published).items():
            directory = Path(tmp) / name
            directory.mkdir()
            for path in source.iterdir():
                if path.name != "config.json" and not path.name.endswith(".safetensors"):
                    (directory / path.name).symlink_to(path.resolve())
            (directory / "config.json").write_text(json.dumps(config))
            report["forms"][name] = {"as is": resolve(directory, {})}
            if adjusted:
                report["forms"][name]["with the engine's adjustments"] = resolve(directory, adjusted)
            print(name, json.dumps(report["forms"][name]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
