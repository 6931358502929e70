"""Build a tiny random causal LM that ``vllm serve`` can load offline, in seconds.

A Llama-shaped model (2 layers, hidden 64) with a character-level tokenizer
built locally with the ``tokenizers`` library (one token per printable ASCII
character, a few CJK characters, chat special tokens) and a plain chat
template. The text it writes is garbage by construction; what the tests use it
for is the real serving path: chat completions, JSON-schema structured outputs,
usage counts.

usage: python tiny_lm.py OUT_DIR   (run with the vLLM test environment's python)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPECIALS = ["<unk>", "<s>", "</s>", "<pad>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>' }}{{ message['content'] }}<|end|>"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def vocabulary() -> list[str]:
    chars = ["\n"] + [chr(c) for c in range(0x20, 0x7F)]
    chars += list("你好世界的是我不了人在有这中大来上个们到说和地也子时道出而要于就下得可你会生自着去之过家学对能")
    return SPECIALS + chars


def build(out: str | Path, seed: int = 0) -> Path:
    import torch
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    vocab = {token: i for i, token in enumerate(vocabulary())}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")  # one token per character
    tok.decoder = decoders.Fuse()
    tok.add_special_tokens([AddedToken(name, special=True, normalized=False) for name in SPECIALS])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(out)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2,
        num_key_value_heads=1, head_dim=32, max_position_embeddings=2048, bos_token_id=vocab["<s>"],
        eos_token_id=vocab["</s>"], pad_token_id=vocab["<pad>"], tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(torch.float32)
    model.generation_config = GenerationConfig(bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id,
                                               pad_token_id=config.pad_token_id, do_sample=False)
    model.save_pretrained(out)
    (out / "subflow-checkpoint.json").write_text(json.dumps({"random_weights": True}))
    return out


if __name__ == "__main__":
    print(build(sys.argv[1]))
