"""Build a tiny, randomly initialized causal LM as an ONNX export, offline, in seconds.

Build time only (torch, transformers, optimum). The result is what tests and benchmarks
of server/generation/onnx_lm.py run against: the same folder layout a real
instruction-tuned model gets (model.onnx exported with `text-generation-with-past`,
tokenizer.json, config.json, manifest.json). Its words are noise; its shapes and cache
behaviour are those of a real GPT-2 or Llama.

    python -m models.tiny_lm OUT_DIR [--arch gpt2|llama] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path

from models.repository import MANIFEST_FILE, MODEL_FILE, TOKENIZER_FILE, sha256_file
from server.errors import Conflict, InvalidInput, ModelBuildError

ARCHS = ("gpt2", "llama")
EOS_TOKEN = "<|endoftext|>"
VOCAB_SIZE = 512
MAX_POSITIONS = 1024
# A little shop text so the byte-level BPE learns real merges; no download needed.
_SHOP_TEXT = (
    "Your order A10023 has shipped and should arrive within three business days.",
    "Your order was delivered on May 3, 2024. You can track your parcel online.",
    "Items can be returned within 30 days of delivery in their original packaging.",
    "Refunds are issued to the original payment method once we receive the return.",
    "The warranty for your wireless earbuds is valid until June 2, 2025.",
    "To open a warranty claim, send us the order number and a photo of the defect.",
    "Standard delivery is free for orders over 50 EUR; express delivery costs 9.90 EUR.",
    "You can change the delivery address until the order leaves our warehouse.",
    "Promo codes apply to full-price items and cannot be combined.",
    "If you cannot sign in, reset your password from the login page.",
    "We are sorry that your package arrived damaged. Please send us a photo.",
    "Customer: Where is my order? Assistant: Let me check the status for you.",
    "Hi Ana! Thanks for reaching out. Is there anything else I can help you with?",
    "Dear customer, thank you for your message. Kind regards, Customer Care",
    "Facts: order status shipped, ordered at 2024-04-28, delivered at 2024-05-03.",
    "Help center: how to return an item, shipping costs, payment problems, invoices.",
)


def _train_tokenizer(seed_text: tuple[str, ...]) -> object:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(list(seed_text) * 4, trainer)
    return tokenizer


def _model(arch: str, vocab_size: int) -> object:
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    if arch == "gpt2":
        # A wider init than GPT-2's 0.02 spreads the logits, so greedy picks are not
        # near-ties that float rounding (cached vs. recomputed attention) could flip.
        gpt2 = GPT2Config(
            vocab_size=vocab_size,
            n_positions=MAX_POSITIONS,
            n_layer=2,
            n_head=2,
            n_embd=64,
            initializer_range=0.2,
            bos_token_id=0,
            eos_token_id=0,
        )
        return GPT2LMHeadModel(gpt2).eval()
    llama = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=MAX_POSITIONS,
        initializer_range=0.2,
        bos_token_id=0,
        eos_token_id=0,
    )
    return LlamaForCausalLM(llama).eval()


def build_tiny_lm(
    out_dir: Path,
    arch: str = "gpt2",
    seed: int = 0,
    *,
    name: str = "tiny-lm",
    version: int = 1,
    chat_template: str | None = None,
) -> Path:
    """Build, export and describe a tiny LM in `out_dir` (must not exist or be empty)."""
    if arch not in ARCHS:
        raise InvalidInput(f"unknown arch {arch!r}; expected one of {ARCHS}")
    out_dir = Path(out_dir)
    if out_dir.exists() and any(out_dir.iterdir()):
        raise Conflict(f"{out_dir} is not empty; versions are never overwritten")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename, so a reader never sees half a model.
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        with warnings.catch_warnings():
            # torch tracing and optimum warn about things that do not matter for this model.
            warnings.simplefilter("ignore")
            _export(work, arch, seed)
        _write_manifest(work, name, version, arch, seed, chat_template)
        if out_dir.exists():
            out_dir.rmdir()
        work.rename(out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out_dir


def _export(work: Path, arch: str, seed: int) -> None:
    import torch
    from optimum.exporters.onnx import main_export
    from transformers import PreTrainedTokenizerFast

    tokenizer = _train_tokenizer(_SHOP_TEXT)
    source = work / "pt"
    torch.manual_seed(seed)
    model = _model(arch, tokenizer.get_vocab_size())  # type: ignore[attr-defined]
    model.save_pretrained(source)  # type: ignore[attr-defined]
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=EOS_TOKEN, bos_token=EOS_TOKEN, pad_token=EOS_TOKEN
    )
    fast.save_pretrained(source)
    main_export(
        str(source),
        work,
        task="text-generation-with-past",
        do_validation=False,
        local_files_only=True,
        library_name="transformers",
    )
    shutil.rmtree(source)
    if not (work / MODEL_FILE).is_file() or not (work / TOKENIZER_FILE).is_file():
        raise ModelBuildError(f"optimum export wrote no {MODEL_FILE}/{TOKENIZER_FILE}")


def _write_manifest(
    work: Path, name: str, version: int, arch: str, seed: int, chat_template: str | None
) -> None:
    files = {
        p.name: sha256_file(p)
        for p in sorted(work.iterdir())
        if p.is_file() and p.suffix in (".onnx", ".onnx_data", ".json")
    }
    manifest = {
        "name": name,
        "version": version,
        "kind": "causal-lm",
        "task": "text-generation-with-past",
        "arch": arch,
        "eos_token_ids": [0],
        "max_positions": MAX_POSITIONS,
        "files": files,
        "build": {
            "seed": seed,
            "n_layer": 2,
            "hidden": 64,
            "vocab_size": VOCAB_SIZE,
            "random_init": True,
        },
    }
    if chat_template:
        manifest["chat_template"] = chat_template
    (work / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--arch", choices=ARCHS, default="gpt2")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(build_tiny_lm(args.out_dir, args.arch, args.seed))


if __name__ == "__main__":
    main()
