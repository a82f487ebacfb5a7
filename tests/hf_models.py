"""Tiny Hugging Face models built here, for the tests: nothing is downloaded.

A byte-level BPE is trained with `tokenizers` on Python source read from the standard library
(present wherever Python is), and random-initialised Llama / GPT-2 models of a few thousand
parameters are saved with `save_pretrained`, exactly as a user's real checkpoint would be.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

TRAINING_TEXT = [inspect.getsource(json.decoder), inspect.getsource(json.encoder)]


def train_tokenizer(vocab: int = 300):
    """A GPT-2-style byte-level BPE (no prefix space), `<|endoftext|>` as BOS/EOS (id 0)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  special_tokens=["<|endoftext|>"], show_progress=False)
    tok.train_from_iterator(TRAINING_TEXT, trainer)
    return tok


def save_tokenizer(tok, out: Path) -> None:
    from transformers import PreTrainedTokenizerFast

    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>")
    fast.save_pretrained(str(out))


def llama_dir(out: Path, hidden: int = 16, layers: int = 2, heads: int = 2, kv: int = 1, vocab: int = 300,
              seed: int = 0, tok=None, dtype: str = "float32", tie: bool = True, kind: str = "llama",
              context: int = 128, **extra) -> Path:
    """A random Llama (RMSNorm, rotary, SwiGLU, grouped-query attention) with a BPE tokenizer;
    `kind` "qwen2" (q/k/v biases) or "qwen3" (per-head q/k RMSNorm) builds those instead;
    `extra` goes to the config."""
    import torch
    import transformers

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = tok or train_tokenizer(vocab)
    save_tokenizer(tok, out)
    torch.manual_seed(seed)
    Config, Model = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
                     "qwen3": ("Qwen3Config", "Qwen3ForCausalLM")}[kind]
    if kind == "qwen3":
        extra.setdefault("head_dim", hidden // heads)
    config = getattr(transformers, Config)(
        vocab_size=tok.get_vocab_size(), hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv, max_position_embeddings=context, bos_token_id=0,
        eos_token_id=0, tie_word_embeddings=tie, **extra)
    model = getattr(transformers, Model)(config).to(getattr(torch, dtype))
    if kind != "llama":  # random biases and norm gains, so the engine's use of them is tested
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name.endswith("bias") or "norm" in name:
                    p.add_(0.3 * torch.randn_like(p))
    model.save_pretrained(str(out))
    return out


def gpt2_dir(out: Path, hidden: int = 16, layers: int = 1, vocab: int = 300, seed: int = 0, tok=None) -> Path:
    """A random GPT-2 (learned positions, LayerNorm, GELU) with a BPE tokenizer."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tok = tok or train_tokenizer(vocab)
    save_tokenizer(tok, out)
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=hidden, n_layer=layers, n_head=2, n_positions=64,
                        bos_token_id=0, eos_token_id=0)
    GPT2LMHeadModel(config).save_pretrained(str(out))
    return out
