"""Build a HunyuanOCR-shaped checkpoint with random weights, offline, in seconds.

The real model's architecture class, token ids, special-token strings, chat
template and processor, at tiny sizes (for the CPU tests) or the real sizes
(for the GPU benchmark). Nothing is downloaded; the text it reads is garbage
by construction, but every code path the engines use is the real one.

``config.json`` is written in the form the published checkpoint has (text keys
at the top level, ``rope_scaling`` of type ``xdrope`` with ``xdrope_section``
and ``alpha``, the ``image_*_token_id`` keys, a ``vision_config``), not in the
nested form transformers 5 saves: vLLM reads that form (0.26's own HunYuanVL
config class takes the architecture, the XD-RoPE sections and the image token
ids from it), and transformers folds it back into its nested config.

usage: python tiny_checkpoint.py OUT_DIR [--real-sizes] [--device cuda] [--dtype bfloat16]
(needs torch and transformers >= 5.13: run it with the vLLM test environment's python)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

# Real HunyuanOCR token layout (../shared/notes/hunyuanocr.md).
VOCAB_SIZE = 120818
BOS, EOS, PAD = 120000, 120020, 120002
IMAGE_START, IMAGE_END, IMAGE, IMAGE_NEWLINE = 120118, 120119, 120120, 120121
FIRST_SPECIAL = 120000


def placeholder(n: int) -> str:
    return f"<｜hy_place▁holder▁no▁{n}｜>"


SPECIAL_NAMES = {
    120000: "<｜hy_begin▁of▁sentence｜>",
    120001: "<｜hy_end▁of▁sentence｜>",
    120002: "<｜hy_▁pad▁｜>",
    120006: "<｜hy_User｜>",
    120007: "<｜hy_Assistant｜>",
}

# HunyuanOCR's chat form: BOS, system text, placeholder 3, then each user turn as image
# placeholders + text, closed by <｜hy_User｜> (the generation prompt ends there). Content may be a
# string or a list of parts (vLLM's server hands the system message over as parts).
CHAT_TEMPLATE = (
    "{% macro render(content) %}"
    "{% if content is string %}{{ content }}{% else %}{% for part in content %}"
    "{% if part['type'] in ('image', 'image_url') %}" + placeholder(100) + placeholder(102) + placeholder(101) + "{% endif %}"
    "{% if part['type'] == 'text' %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "{% endmacro %}"
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ render(message['content']) }}" + placeholder(3) + "{% endif %}"
    "{% if message['role'] == 'user' %}{{ render(message['content']) }}<｜hy_User｜>{% endif %}"
    "{% if message['role'] == 'assistant' %}{{ render(message['content']) }}" + placeholder(2) + "{% endif %}"
    "{% endfor %}"
)

TINY = {
    "text": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, head_dim=32, mrope_section=[4, 4, 4, 4]),
    "vision": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
                   max_image_size=1024),
}
# The real model (intermediate sizes follow from the published parameter counts: 0.46B ViT, 0.54B LLM).
REAL = {
    "text": dict(hidden_size=1024, intermediate_size=3584, num_hidden_layers=24, num_attention_heads=16,
                 num_key_value_heads=8, head_dim=128, mrope_section=[16, 16, 16, 16]),
    "vision": dict(hidden_size=1152, intermediate_size=4304, num_hidden_layers=27, num_attention_heads=16,
                   max_image_size=2048),
}


def printable_chars() -> list[str]:
    """Characters that get one token each: ASCII, CJK ideographs and CJK/full-width punctuation."""
    ranges = [(0x20, 0x7F), (0x3000, 0x3040), (0x4E00, 0xA000), (0xFF00, 0xFFF0)]
    return ["\n"] + [chr(c) for lo, hi in ranges for c in range(lo, hi)]


def build_tokenizer(out: Path, min_pixels: int, max_pixels: int):
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import HunYuanVLImageProcessor, HunYuanVLProcessor, PreTrainedTokenizerFast

    chars = printable_chars()
    vocab = {ch: i for i, ch in enumerate(chars)}
    vocab["<unk>"] = len(vocab)
    for i in range(len(vocab), FIRST_SPECIAL):
        vocab[f"<filler_{i}>"] = i
    specials = []
    for i in range(FIRST_SPECIAL, VOCAB_SIZE):
        if i in SPECIAL_NAMES:
            name = SPECIAL_NAMES[i]
        elif i >= 120018:
            name = placeholder(i - 120018)
        else:
            name = f"<｜hy_reserved_{i}｜>"
        vocab[name] = i
        specials.append(name)
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    # One token per character; [\s\S] because the tokenizers regex engine rejects inline flags.
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(name, special=True, normalized=False) for name in specials])
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=SPECIAL_NAMES[BOS],
        eos_token=placeholder(EOS - 120018),
        pad_token=SPECIAL_NAMES[PAD],
        unk_token="<unk>",
        extra_special_tokens={
            "image_token": placeholder(IMAGE - 120018),
            "image_start_token": placeholder(IMAGE_START - 120018),
            "image_end_token": placeholder(IMAGE_END - 120018),
        },
    )
    fast.padding_side = "left"
    fast.chat_template = CHAT_TEMPLATE
    image_processor = HunYuanVLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels)
    processor = HunYuanVLProcessor(image_processor=image_processor, tokenizer=fast, chat_template=CHAT_TEMPLATE)
    processor.save_pretrained(out)
    fast.save_pretrained(out)
    return fast


def build_config(sizes: dict):
    from transformers import HunYuanVLConfig

    text = dict(sizes["text"])
    mrope = text.pop("mrope_section")
    return HunYuanVLConfig(
        text_config=dict(
            **text,
            vocab_size=VOCAB_SIZE,
            max_position_embeddings=8192,
            rms_norm_eps=1e-5,
            bos_token_id=BOS,
            eos_token_id=EOS,
            pad_token_id=PAD,
            tie_word_embeddings=True,
            rope_parameters={"rope_type": "dynamic", "rope_theta": 10000.0, "alpha": 1000.0, "factor": 1.0, "mrope_section": mrope},
        ),
        vision_config=dict(**sizes["vision"], patch_size=16, spatial_merge_size=2, out_hidden_size=text["hidden_size"]),
        image_token_id=IMAGE,
        im_start_id=IMAGE_START,
        im_end_id=IMAGE_END,
        im_newline_id=IMAGE_NEWLINE,
        tie_word_embeddings=True,
    )


def published_config(sizes: dict, dtype: str = "bfloat16") -> dict:
    """config.json as tencent/HunyuanOCR publishes it (the flat 1.0 layout), at the given sizes.

    vLLM 0.26 resolves the architecture, the runner, XD-RoPE (``uses_xdrope_dim``
    rather than M-RoPE) and the image start/end ids from exactly these keys;
    with transformers 5's nested form it picked a pooling runner and M-RoPE.
    """
    text = dict(sizes["text"])
    section = text.pop("mrope_section")
    vision = dict(sizes["vision"])
    return {
        "architectures": ["HunYuanVLForConditionalGeneration"],
        "model_type": "hunyuan_vl",
        **text,
        "attention_head_dim": text["head_dim"],
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "use_qk_norm": True,
        "norm_type": "rms",
        "rms_norm_eps": 1e-5,
        "max_position_embeddings": 8192,
        "vocab_size": VOCAB_SIZE,
        "org_vocab_size": VOCAB_SIZE,
        "rope_theta": 10000.0,
        "rope_scaling": {"type": "xdrope", "alpha": 1000.0, "factor": 1.0, "beta_fast": 32, "beta_slow": 1,
                         "mscale": 1.0, "mscale_all_dim": 1.0, "xdrope_section": section},
        "bos_token_id": BOS,
        "eos_token_id": EOS,
        "eod_token_id": EOS,
        "pad_token_id": PAD,
        "pad_id": PAD,
        "image_start_token_id": IMAGE_START,
        "image_end_token_id": IMAGE_END,
        "image_token_id": IMAGE,
        "image_newline_token_id": IMAGE_NEWLINE,
        "tie_word_embeddings": True,
        "torch_dtype": dtype,
        "vision_config": {
            **vision,
            "hidden_act": "gelu",
            "patch_size": 16,
            "spatial_merge_size": 2,
            "temporal_patch_size": 1,
            "num_channels": 3,
            "interpolate_mode": "bilinear",
            "rms_norm_eps": 1e-5,
            "out_hidden_size": text["hidden_size"],
            "text_hidden_size": text["hidden_size"],
            "add_patchemb_bias": True,
            "cat_extra_token": 1,
            "img_max_token_num": 4096,
            "max_vit_seq_len": 16384,
            "min_image_size": 512,
        },
    }


def build(out: str | Path, real_sizes: bool = False, device: str = "cpu", dtype: str = "float32",
          min_pixels: int = 32 * 32, max_pixels: int = 64 * 1024, seed: int = 0) -> Path:
    """Write config, tokenizer, processor and random weights to ``out``; returns ``out``."""
    import torch
    from transformers import GenerationConfig, HunYuanVLForConditionalGeneration

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(out, min_pixels, max_pixels)
    config = build_config(REAL if real_sizes else TINY)
    torch.manual_seed(seed)
    with torch.device(device):
        model = HunYuanVLForConditionalGeneration(config).to(getattr(torch, dtype))
    if not real_sizes:
        # Random tied embeddings make greedy decoding repeat the last prompt token (a special one, so the
        # text decodes empty). Louder rows for the ASCII letters and digits make the answer visible text.
        ids = tokenizer.convert_tokens_to_ids([c for c in printable_chars() if c.isascii() and c.isalnum()])
        with torch.no_grad():
            model.get_input_embeddings().weight[ids] *= 8.0
    model.generation_config = GenerationConfig(bos_token_id=BOS, eos_token_id=EOS, pad_token_id=PAD, do_sample=False)
    model.save_pretrained(out)
    (out / "config.json").write_text(json.dumps(published_config(REAL if real_sizes else TINY, dtype), indent=2))
    (out / "subflow-checkpoint.json").write_text(json.dumps({"random_weights": True, "real_sizes": real_sizes}))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--real-sizes", action="store_true", help="the real HunyuanOCR sizes (about 1B parameters)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--min-pixels", type=int, default=32 * 32)
    parser.add_argument("--max-pixels", type=int, default=64 * 1024)
    args = parser.parse_args()
    print(build(args.out, args.real_sizes, args.device, args.dtype, args.min_pixels, args.max_pixels))


if __name__ == "__main__":
    main()
