"""The grid's plots from its runs and fits: bpb against compute per size with the law's curves,
iso-FLOP curves, the compute-optimal frontier and the model-cost curves, the classic coders as
reference lines. Split from grid_report.py, which computes the fits and writes the text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .joint import JointFit, optimal_split

#: file sizes the model-cost table and plot charge a model against
FILE_SIZES = (1e6, 1e7, 1e8, 1e9)
REFERENCE_LINES = ("ppmd-o6", "xz-9e", "zlib-9")


def _fit_of(summary: dict) -> JointFit | None:
    if "alpha" not in summary:
        return None
    return JointFit(summary["E"], summary["A"], summary["alpha"], summary["B"], summary["beta"], summary["r2"],
                    summary["n_runs"], summary.get("form", "chinchilla"))


def plot_grid(results: dict, fits: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs, base = results.get("runs", []), results.get("baselines", {})
    families = list(fits)
    if not families:
        return []
    written = []

    def refs(ax) -> None:
        for name in REFERENCE_LINES:
            if name in base:
                ax.axhline(base[name], color="grey", lw=0.8, ls=":")
                ax.text(ax.get_xlim()[0], base[name], f" {name} {base[name]:.3f}", va="bottom", fontsize=7,
                        color="grey")

    # bpb against D, one line per size, measured points and the fit
    fig, axes = plt.subplots(1, len(families), figsize=(6 * len(families), 4.5), squeeze=False)
    for ax, fam in zip(axes[0], families):
        fit = _fit_of(fits[fam])
        mine = [r for r in runs if r["family"] == fam]
        sizes = sorted({r["size"] for r in mine}, key=lambda s: next(r["non_embedding_params"] for r in mine if r["size"] == s))
        cmap = plt.get_cmap("viridis")
        for i, size in enumerate(sizes):
            pts = sorted((r["train_bytes"], r["actual_bpb"], r["non_embedding_params"]) for r in mine if r["size"] == size)
            color = cmap(i / max(1, len(sizes) - 1))
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", color=color, label=f"{size} (N={pts[0][2]:,})")
            if fit is not None:
                dd = np.geomspace(pts[0][0] / 1.5, pts[-1][0] * 4, 50)
                ax.plot(dd, fit.predict(pts[0][2], dd), "-", color=color, lw=1)
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decade labels only
        ax.set_xlabel("training bytes D")
        ax.set_ylabel("held-out bpb (range-coded)")
        title = f"{fam}" + (f" ({fit.form}): {fit.describe()}, R²={fit.r2:.3f}" if fit else "")
        ax.set_title(title, fontsize=8)
        refs(ax)
    written.append(_save(fig, out / "grid.png"))

    # iso-FLOP curves and the compute-optimal frontier
    fig, axes = plt.subplots(1, len(families), figsize=(6 * len(families), 4.5), squeeze=False)
    fig2, ax2 = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, fam in zip(axes[0], families):
        fit = _fit_of(fits[fam])
        mine = [r for r in runs if r["family"] == fam]
        if fit is None:
            continue
        c = np.array([r["flops_6nd"] for r in mine])
        levels = np.geomspace(c.min(), c.max(), 5)
        nn = np.geomspace(min(r["non_embedding_params"] for r in mine) / 3, max(r["non_embedding_params"] for r in mine) * 10, 200)
        cmap = plt.get_cmap("plasma")
        for j, level in enumerate(levels):
            color = cmap(j / len(levels))
            ax.plot(nn, fit.predict(nn, level / (6 * nn)), color=color, label=f"C = {level:.1e} FLOPs")
            n_opt, _ = optimal_split(fit, np.array([level]))
            ax.plot(n_opt, fit.predict(n_opt, level / (6 * n_opt)), "*", color=color, ms=10)
        sc = ax.scatter([r["non_embedding_params"] for r in mine], [r["actual_bpb"] for r in mine], c=np.log10(c),
                        cmap="plasma", edgecolor="k", zorder=3)
        fig.colorbar(sc, ax=ax, label="log10 run FLOPs (6ND)")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decade labels only
        ax.set_ylim(min(r["actual_bpb"] for r in mine) - 0.3, max(r["actual_bpb"] for r in mine) + 0.3)
        ax.set_xlabel("non-embedding parameters N")
        ax.set_ylabel("bpb")
        ax.set_title(f"{fam}: iso-FLOP curves from the fit (★ = optimum), dots = runs", fontsize=8)
        refs(ax)
        comp = np.geomspace(c.min(), c.max() * 100, 30)
        n_opt, d_opt = optimal_split(fit, comp)
        fr = fits[fam]["frontier"]
        ax2[0].loglog(comp, n_opt, label=f"{fam}: N_opt ∝ C^{fr['a_n_opt']:.2f}")
        ax2[1].loglog(comp, d_opt, label=f"{fam}: D_opt ∝ C^{fr['b_d_opt']:.2f}")
    for a, what in zip(ax2, ("N_opt (non-embedding parameters)", "D_opt (training bytes)")):
        if a.get_lines():  # a slope-0.5 line through the first curve's start, for comparison
            x0, y0 = a.get_lines()[0].get_xdata()[0], a.get_lines()[0].get_ydata()[0]
            ref = np.geomspace(x0, a.get_xlim()[1], 10)
            a.loglog(ref, y0 * (ref / x0) ** 0.5, "k:", lw=1, label="Chinchilla slope 0.5")
        a.set_xlabel("training compute C = 6·N·D (FLOPs)")
        a.set_ylabel(what)
    fig2.suptitle("compute-optimal frontier from the joint fits", fontsize=9)
    written += [_save(fig, out / "isoflop.png"), _save(fig2, out / "frontier.png")]

    # the model's own bytes: best size per file size
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for fam in families:
        fit = _fit_of(fits[fam])
        if fit is None:
            continue
        law = (fits[fam]["total_param_law"]["c"], fits[fam]["total_param_law"]["k"])
        nn = np.geomspace(1e3, 1e9, 200)
        for s, ls in zip(FILE_SIZES, ("-", "--", "-.", ":")):
            adj = fit.predict(nn, np.inf) + 8 * 2.0 * law[0] * nn ** law[1] / s
            ax.plot(nn, adj, ls, label=f"{fam}, file {s / 1e6:g} MB")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # decade labels only
    ax.set_ylim(0, 8)
    ax.set_xlabel("non-embedding parameters N (converged: D → ∞)")
    ax.set_ylabel("bpb charged for the model (float16 weights)")
    ax.set_title("coded bytes + model bytes: the best model size grows with the file", fontsize=9)
    for name in REFERENCE_LINES:
        if name in base:
            ax.axhline(base[name], color="grey", lw=0.8, ls=":")
    written.append(_save(fig, out / "model_cost.png"))
    return written


def _save(fig: Any, path: Path) -> str:
    """Legends on every axis that has labelled lines, then the PNG; returns its file name."""
    import matplotlib.pyplot as plt

    for ax in fig.axes:
        if ax.get_legend() is None and ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path.name
