"""What the portable Llama engine costs against float inference: a small Llama-architecture model
is trained here (CPU, a couple of minutes) on Python source from the standard library, saved as a
Hugging Face directory, and text it has not seen is coded with `lm` on the portable engine
(`llama-int8x8-v1`) and on float32 torch (`torch-float32-v1`); bits per byte of both, from the
coder's ideal code length, and the compressed sizes.

    PYTHONPATH=. python benchmarks/llama_portable.py [--steps 600] [--out DIR] [--json PATH]
    PYTHONPATH=. python benchmarks/llama_portable.py --model DIR [--text FILE]   # a checkpoint you have

No network: the tokenizer and the model are built from the standard library's own source; with
--model, a local Hugging Face directory (e.g. SmolLM2-135M) is measured instead, on --text or the
same held-out source.
"""

from __future__ import annotations

import argparse
import inspect
import json
import time
from pathlib import Path


def corpus() -> tuple[str, str]:
    import argparse as a
    import collections
    import difflib
    import email.message as em
    import json.decoder as jd
    import json.encoder as je
    import textwrap
    import typing

    train = "".join(inspect.getsource(m) for m in (a, collections, difflib, typing, jd, je))
    held = "".join(inspect.getsource(m) for m in (textwrap, em))
    return train, held


def train(out: Path, steps: int, hidden: int, layers: int, tie: bool, context: int = 256, seed: int = 0) -> Path:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from tests.hf_models import save_tokenizer, train_tokenizer

    text, _ = corpus()
    tok = train_tokenizer(1024)
    out.mkdir(parents=True, exist_ok=True)
    save_tokenizer(tok, out)
    ids = torch.tensor(tok.encode(text).ids, dtype=torch.long)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, intermediate_size=int(2.75 * hidden),
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=context, bos_token_id=0, eos_token_id=0, tie_word_embeddings=tie)
    model = LlamaForCausalLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    batch, seq = 16, context
    t0 = time.time()
    for step in range(steps):
        starts = torch.randint(0, len(ids) - seq - 1, (batch,))
        x = torch.stack([ids[s:s + seq] for s in starts])
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    model.save_pretrained(str(out))
    (out / "generation_config.json").unlink(missing_ok=True)
    return out


def measure(spec: str, data: bytes, lanes: int) -> dict:
    import ziplab
    from ziplab.codecs.kernels.predictive import encode_lanes
    from ziplab.codecs.lm import MIN_LANE_TOKENS
    from ziplab.lm.coding import FLOAT_ENGINE, coding_model

    res = {}
    for name, engine in (("portable", None), ("float", FLOAT_ENGINE)):
        m = coding_model(spec, engine)
        ids = m.tokens.encode(data)
        stats = ziplab.CodingStats()
        t0 = time.perf_counter()
        body = encode_lanes(m.predictor, ids, lanes, stats, None, MIN_LANE_TOKENS, m.tokens.start)
        res[name] = {"engine": m.engine, "bits_per_byte": stats.ideal_bits / len(data), "payload_bytes": len(body) + 4,
                     "tokens": len(ids), "seconds": round(time.perf_counter() - t0, 2)}
    res["portable_cost_percent"] = 100 * (res["portable"]["bits_per_byte"] / res["float"]["bits_per_byte"] - 1)
    blob = ziplab.compress(data, "lm", model=spec, lanes=lanes)
    assert ziplab.decompress(blob) == data
    res["lm_file_bytes"] = len(blob)
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("/tmp/ziplab-llama-bpb"))
    ap.add_argument("--bytes", type=int, default=12000)
    ap.add_argument("--lanes", type=int, default=4)
    ap.add_argument("--json", type=Path)
    ap.add_argument("--model", type=Path, help="measure this Hugging Face directory instead of training")
    ap.add_argument("--text", type=Path, help="the text to code (default: held-out standard library source)")
    args = ap.parse_args()
    results = {}
    data = args.text.read_bytes()[:args.bytes] if args.text else corpus()[1].encode()[:args.bytes]
    if args.model:
        results[str(args.model)] = r = measure(f"hf:{args.model}", data, args.lanes)
        print(json.dumps(r, indent=1), flush=True)
        if args.json:
            args.json.write_text(json.dumps(results, indent=1) + "\n")
        return
    for tie in (True, False):
        d = args.out / ("tied" if tie else "untied")
        if not (d / "model.safetensors").is_file():
            train(d, args.steps, args.hidden, args.layers, tie)
        results["tied" if tie else "untied"] = r = measure(f"hf:{d}", data, args.lanes)
        print(json.dumps(r, indent=1), flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
