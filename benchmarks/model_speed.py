"""Step throughput of every predictor on one thread, as the coder runs it (bytes/s = lanes x
steps/s), and optionally training throughput per ladder rung. Weights are random: speed does
not depend on them. Writes benchmarks/results/model_speed.json.

    python benchmarks/model_speed.py [--lanes 64] [--seconds 2] [--train] [--sizes t1,l4]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from ziplab.models.context import ContextPredictor
from ziplab.models.ladder import LADDER, rung
from ziplab.hardware import native_bf16
from ziplab.provenance import record as provenance_record
from ziplab.models.portable import PortablePredictor
from ziplab.models.predictor import BOS

RESULTS = Path(__file__).resolve().parent / "results" / "model_speed.json"


def step_speed(pred, lanes: int, seconds: float, warm_steps: int) -> float:
    """Bytes/s once warm (transformer caches full, numba compiled)."""
    rng = np.random.default_rng(0)
    state = pred.start(lanes)
    prev = np.full(lanes, BOS, dtype=np.int64)
    for _ in range(warm_steps):
        _, state = pred.step(state, prev)
        prev = rng.integers(0, 256, lanes)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, state = pred.step(state, prev)
        prev = rng.integers(0, 256, lanes)
        steps += 1
    return lanes * steps / (time.perf_counter() - t0)


def train_speed(size: str, seconds: float) -> float:
    """Training bytes/s for a rung's own batch and context (AdamW step included), with bf16
    autocast exactly where training uses it: CPUs with native bf16 (fp32 elsewhere)."""
    import torch.nn.functional as F

    from ziplab.models.train import make_optimizer, sample_batch

    r = rung(size)
    model = r.build()
    opt = make_optimizer(model, r.lr)
    autocast = native_bf16()
    data = np.random.default_rng(0).integers(32, 127, 1 << 20).astype(np.uint8)
    rng = np.random.default_rng(0)

    def one() -> None:
        x, y = sample_batch(data, rng, r.batch, r.context)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):  # see train_model
            logits, _ = model(x)
        loss = F.cross_entropy(logits.float().reshape(-1, 256), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    one()
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds or steps < 2:
        one()
        steps += 1
    return steps * r.batch * r.context / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lanes", type=int, default=64, help="neural lanes (the nn codec's default)")
    ap.add_argument("--ctx-lanes", type=int, default=16, help="ctx lanes (the ctx codec's default)")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--sizes", default=",".join(LADDER))
    ap.add_argument("--ctx-orders", default="2,4,6")
    ap.add_argument("--train", action="store_true", help="also measure training bytes/s (bf16 autocast where native, as training does)")
    ap.add_argument("--train-threads", type=int, default=1)
    args = ap.parse_args()

    torch.manual_seed(0)
    rows = []
    for size in [s for s in args.sizes.split(",") if s]:
        r = rung(size)
        model = r.build().eval()
        torch.set_num_threads(1)
        bps = step_speed(PortablePredictor(model, size, threads=1), args.lanes, args.seconds, r.context + 8)
        row = {"size": size, "family": r.family, "params": model.num_params(),
               "non_embedding": model.non_embedding_params(), "context": r.context, "lanes": args.lanes,
               "step_bytes_per_s": round(bps)}
        if args.train:
            torch.set_num_threads(args.train_threads)
            row["train_bytes_per_s"] = round(train_speed(size, args.seconds))
            row["train_threads"] = args.train_threads
        rows.append(row)
        print(json.dumps(row), flush=True)
    for order in [int(o) for o in args.ctx_orders.split(",") if o]:
        bps = step_speed(ContextPredictor(order=order), args.ctx_lanes, args.seconds, 50)
        rows.append({"size": f"ctx{order}", "family": "ctx", "params": 0, "non_embedding": 0, "context": order,
                     "lanes": args.ctx_lanes, "step_bytes_per_s": round(bps)})
        print(json.dumps(rows[-1]), flush=True)

    print(f"\n{'size':6} {'family':12} {'non-emb':>9} {'T':>4} {'lanes':>5} {'step B/s':>10} {'train B/s':>10}")
    for r in rows:
        print(f"{r['size']:6} {r['family']:12} {r['non_embedding']:>9} {r['context']:>4} {r['lanes']:>5} "
              f"{r['step_bytes_per_s']:>10} {r.get('train_bytes_per_s', '-'):>10}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({
        "provenance": provenance_record(),
        "note": "1 thread for stepping; machine shared with other jobs, so numbers are noisy",
        "rows": rows,
    }, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
