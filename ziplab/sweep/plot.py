"""The scaling plot: bits-per-byte against non-embedding parameters, one colour per family.

Filled markers are measured bpb of the range-coded held-out bytes, with the fitted curve
through them; hollow markers on a dashed line are the adjusted bpb, which also charges the
model's own bytes (the honest figure if the decoder has to receive the model). Classic coders
are grey horizontal lines. Adjusted points far above everything else (big model, small
evaluation set) are pinned to the top edge with their value written beside them, so they do
not squash the curves that matter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .fit import FamilyFit, as_family_fits

ADJUSTED_CAP_BPB = 8.0  # bytes are 8 bits: beyond this the adjusted figure says "worse than raw"
ADJUSTED_HEADROOM = 1.2  # adjusted points may lift the y-range this far above the measured ones


def _spread(values: list[float], gap: float) -> list[float]:
    """Label heights for sorted values, nudged up so neighbouring labels never overlap."""
    out: list[float] = []
    for v in values:
        out.append(max(v, out[-1] + gap) if out else v)
    return out


def _fit_label(fit: FamilyFit | None) -> tuple[str, Any]:
    """Legend text and the fit object to draw: saturating if there is one, else the power law."""
    if fit is None:
        return "", None
    if fit.saturating is not None:
        s = fit.saturating
        flag = ", interpolates" if s.dof == 0 else ""
        return f"E + A·N^-α: E={s.E:.3f}, α={s.alpha:.3f}, R²={s.r2:.3f}{flag}", s
    if fit.power_law is not None:
        p = fit.power_law
        return f"A·N^-α: α={p.alpha:.3f}, R²={p.r2:.3f}", p
    return "", None


def plot_curve(results: Mapping[str, Any], fits: Mapping[str, Any], path: str | Path) -> Path:
    """Write the PNG to `path` and return it. `fits`: fit_results() output or fit.json's content."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fits = as_family_fits(fits)
    rows = [r for r in results.get("sizes", []) if r.get("non_embedding_params")]
    families = list(dict.fromkeys(str(r.get("family", "model")) for r in rows))
    baselines: Mapping[str, float] = results.get("baselines") or {}
    colors = plt.get_cmap("tab10").colors

    actual_all = [r["actual_bpb"] for r in rows if r.get("actual_bpb") is not None]
    adjusted_all = [r["adjusted_bpb"] for r in rows if r.get("adjusted_bpb") is not None]
    measured_top = max(actual_all + list(baselines.values()) + [1.0])
    adjusted_top = min(max(adjusted_all, default=0.0), ADJUSTED_CAP_BPB, ADJUSTED_HEADROOM * measured_top)
    top = 1.1 * max(measured_top, adjusted_top)
    # the y-axis starts near the best figure, not at 0: the differences that matter are tenths of a bit
    bottom = float(np.floor(2 * 0.9 * min(actual_all + list(baselines.values()) + [top / 1.1])) / 2)

    fig, ax = plt.subplots(figsize=(9, 6.5), dpi=120)
    ax.set_xscale("log")
    xs_all = np.array([r["non_embedding_params"] for r in rows], dtype=float)
    span = (xs_all.min() / 2, xs_all.max() * 2) if len(xs_all) else (1e3, 1e8)

    for i, fam in enumerate(families):
        color = colors[i % len(colors)]
        fam_rows = sorted((r for r in rows if str(r.get("family", "model")) == fam), key=lambda r: r["non_embedding_params"])
        x = np.array([r["non_embedding_params"] for r in fam_rows], dtype=float)
        actual = [(xi, r.get("actual_bpb")) for xi, r in zip(x, fam_rows) if r.get("actual_bpb") is not None]
        if actual:
            ax.plot(*zip(*actual), "o", color=color, markersize=7, label=f"{fam}: measured bpb", zorder=3)
        mixed = [(xi, r["mix"]["actual_bpb"]) for xi, r in zip(x, fam_rows) if r.get("mix")]
        if mixed:
            ax.plot(*zip(*mixed), "s-", color=color, markersize=6, linewidth=1.2, alpha=0.85,
                    label=f"{fam} inside mix (+ context mixing)", zorder=3)
        label, fit = _fit_label(fits.get(fam))
        if fit is not None:
            grid = np.geomspace(*span, 200)
            ax.plot(grid, fit.predict(grid), "-", color=color, linewidth=1.6, label=f"{fam} fit: {label}", zorder=2)
        adjusted = [(xi, r["adjusted_bpb"]) for xi, r in zip(x, fam_rows) if r.get("adjusted_bpb") is not None]
        if adjusted:
            ax_, ay = np.array(adjusted).T
            shown = np.minimum(ay, top / 1.04)
            ax.plot(ax_, shown, "--", color=color, linewidth=1.0, alpha=0.7, zorder=2)
            ax.plot(ax_, shown, "o", markerfacecolor="none", markeredgecolor=color, markersize=7,
                    label=f"{fam}: adjusted bpb (+ model bytes)", zorder=3)
            for xv, yv, sv in zip(ax_, ay, shown):
                if yv > sv:
                    ax.annotate(f"↑ {yv:.1f}", (xv, sv), textcoords="offset points", xytext=(5, -12),
                                fontsize=7, color=color)

    ordered = sorted(baselines.items(), key=lambda kv: kv[1])
    for (name, bpb), y in zip(ordered, _spread([b for _, b in ordered], gap=(top - bottom) * 0.035)):
        ax.axhline(bpb, color="0.55", linewidth=0.9, linestyle=":", zorder=1)
        ax.text(span[1], y, f" {name} {bpb:.3f}", va="center", ha="left", fontsize=8, color="0.35", clip_on=False)

    ax.set_xlim(*span)
    ax.set_ylim(bottom, top)
    ax.set_xlabel("non-embedding parameters")
    ax.set_ylabel("bits per byte (held-out)")
    corpus = results.get("corpus", "")
    eval_bytes = results.get("eval_bytes")
    title = f"bpb vs model size — {corpus}" + (f" ({eval_bytes:,} held-out bytes)" if eval_bytes else "")
    ax.set_title(title, fontsize=11)
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", axis="x", alpha=0.1)
    if families:  # below the axes: inside, it would hide the points pinned to the top edge
        ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2, frameon=False)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
