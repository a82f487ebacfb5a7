"""Scaling-law fits of bits-per-byte against model size N (non-embedding parameters).

Two forms per model family:
  saturating  bpb(N) = E + A * N^(-alpha)   E >= 0 is the irreducible entropy floor
  power law   bpb(N) = A * N^(-alpha)       fitted as a line in log-log space

The saturating form has three parameters, so it is fitted only with >= 3 points (with exactly
3 it interpolates: dof = 0, R^2 = 1 says nothing, and `note` says so); the power law needs 2.
With fewer points the fit is None and `note` explains why. R^2 is reported on bpb itself for
both forms so they can be compared; the power law also reports its log-space R^2.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Mapping

import numpy as np


@dataclass(frozen=True)
class SaturatingFit:
    E: float
    A: float
    alpha: float
    r2: float
    dof: int
    #: 95% intervals {"E": [lo, hi], "alpha": [lo, hi]} from the fit's covariance with a Student-t
    #: quantile at `dof` (None when dof = 0: three points determine the curve, nothing is left over)
    ci: dict | None = None

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        return self.E + self.A * np.power(np.asarray(n, dtype=float), -self.alpha)


@dataclass(frozen=True)
class PowerLawFit:
    A: float
    alpha: float
    r2: float
    r2_log: float
    dof: int

    def predict(self, n: np.ndarray | float) -> np.ndarray:
        return self.A * np.power(np.asarray(n, dtype=float), -self.alpha)


@dataclass(frozen=True)
class FamilyFit:
    family: str
    n_points: int
    saturating: SaturatingFit | None
    power_law: PowerLawFit | None
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "FamilyFit":
        sat, pl = d.get("saturating"), d.get("power_law")
        return cls(
            d["family"],
            int(d["n_points"]),
            SaturatingFit(**sat) if sat else None,
            PowerLawFit(**pl) if pl else None,
            d.get("note", ""),
        )


def r_squared(y: np.ndarray, pred: np.ndarray) -> float:
    """1 - SS_res/SS_tot; 1.0 when y is constant and matched exactly, else -inf for a constant y."""
    ss_res = float(np.sum((y - pred) ** 2))
    ss_tot = float(np.sum((y - y.mean()) ** 2))
    if ss_tot == 0.0:
        return 1.0 if ss_res < 1e-24 else float("-inf")
    return 1.0 - ss_res / ss_tot


def fit_power_law(n: np.ndarray, y: np.ndarray) -> PowerLawFit | None:
    """Least squares of log y on log N; needs 2 distinct sizes and positive bpb."""
    n, y = np.asarray(n, float), np.asarray(y, float)
    if len(np.unique(n)) < 2 or np.any(y <= 0) or np.any(n <= 0):
        return None
    slope, intercept = np.polyfit(np.log(n), np.log(y), 1)
    fit = PowerLawFit(float(np.exp(intercept)), float(-slope), 0.0, 0.0, len(n) - 2)
    log_pred = intercept + slope * np.log(n)
    return PowerLawFit(fit.A, fit.alpha, r_squared(y, fit.predict(n)), r_squared(np.log(y), log_pred), fit.dof)


def _initial_guess(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """Scan the floor E over [0, min y): for each, log(y - E) vs log x is a line giving A, alpha.

    Keeps the E whose implied curve fits best; this lands curve_fit in the right basin even
    when the points barely bend, where a fixed starting point often wanders off."""
    best: tuple[float, float, float, float] | None = None
    for E in np.concatenate([[0.0], np.min(y) * (1 - np.geomspace(1.0, 1e-4, 60))[1:]]):
        slope, intercept = np.polyfit(np.log(x), np.log(y - E), 1)
        if slope >= 0:
            continue
        pred = E + np.exp(intercept) * x**slope
        sse = float(np.sum((pred - y) ** 2))
        if best is None or sse < best[0]:
            best = (sse, float(E), float(np.exp(intercept)), float(-slope))
    if best is None:
        return 0.0, float(np.mean(y)), 0.1
    return best[1], best[2], best[3]


def fit_saturating(n: np.ndarray, y: np.ndarray) -> SaturatingFit | None:
    """Bounded least squares (E >= 0, A >= 0, alpha > 0) on N scaled by its geometric mean."""
    from scipy.optimize import OptimizeWarning, curve_fit

    n, y = np.asarray(n, float), np.asarray(y, float)
    if len(np.unique(n)) < 3 or np.any(n <= 0) or np.any(y <= 0):
        return None
    scale = float(np.exp(np.mean(np.log(n))))  # conditions the problem: x is O(1) around the data
    x = n / scale
    E0, A0, a0 = _initial_guess(x, y)

    def model(x: np.ndarray, E: float, A: float, alpha: float) -> np.ndarray:
        return E + A * np.power(x, -alpha)

    ci = None
    try:
        with warnings.catch_warnings():  # no covariance at dof = 0 is expected, not news
            warnings.simplefilter("ignore", OptimizeWarning)
            (E, A, alpha), cov = curve_fit(
                model,
                x,
                y,
                p0=[E0, max(A0, 1e-12), max(a0, 1e-6)],
                bounds=([0.0, 0.0, 1e-6], [np.inf, np.inf, 10.0]),
                method="trf",
                maxfev=20_000,
                ftol=1e-14,
                xtol=1e-14,
                gtol=1e-14,
            )
        ci = _intervals({"E": (E, cov[0, 0]), "alpha": (alpha, cov[2, 2])}, len(n) - 3)
    except (RuntimeError, ValueError):
        E, A, alpha = E0, A0, a0
    fit = SaturatingFit(float(E), float(A * scale**alpha), float(alpha), 0.0, len(n) - 3)
    return SaturatingFit(fit.E, fit.A, fit.alpha, r_squared(y, fit.predict(n)), fit.dof, ci)


def _intervals(estimates: dict[str, tuple[float, float]], dof: int, level: float = 0.95) -> dict | None:
    """Estimate +- t(dof) x standard error for each (estimate, variance); None without dof."""
    from scipy.stats import t

    if dof <= 0 or not all(np.isfinite(v) and v >= 0 for _, v in estimates.values()):
        return None
    q = float(t.ppf(0.5 + level / 2, dof))
    return {k: [round(float(m - q * np.sqrt(v)), 6), round(float(m + q * np.sqrt(v)), 6)] for k, (m, v) in estimates.items()}


def fit_family(family: str, n: Iterable[float], bpb: Iterable[float]) -> FamilyFit:
    """Both forms for one family, with a note whenever a form is missing or interpolates."""
    pairs = sorted((float(a), float(b)) for a, b in zip(n, bpb) if a is not None and b is not None)
    ns = np.array([p[0] for p in pairs])
    ys = np.array([p[1] for p in pairs])
    sat = fit_saturating(ns, ys)
    pl = fit_power_law(ns, ys)
    distinct = len(np.unique(ns)) if len(ns) else 0
    notes = []
    if sat is None:
        notes.append(f"{distinct} distinct size(s): E + A*N^-alpha needs 3, not fitted")
    elif sat.dof == 0:
        notes.append("3 points for 3 parameters: E + A*N^-alpha interpolates (R^2 = 1 is not evidence)")
    if pl is None:
        notes.append("power law needs 2 distinct sizes with positive bpb, not fitted")
    elif pl.dof == 0:
        notes.append("2 points: the power law is a line through them")
    return FamilyFit(family, len(pairs), sat, pl, "; ".join(notes))


def fit_results(
    results: Mapping[str, Any], x_key: str = "non_embedding_params", y_key: str = "actual_bpb"
) -> dict[str, FamilyFit]:
    """Fit every family in a sweep's results dict (see ziplab.sweep.report for the schema)."""
    by_family: dict[str, list[tuple[float, float]]] = {}
    for row in results.get("sizes", []):
        if row.get(x_key) is None or row.get(y_key) is None:
            continue
        by_family.setdefault(str(row.get("family", "model")), []).append((row[x_key], row[y_key]))
    return {fam: fit_family(fam, [p[0] for p in pts], [p[1] for p in pts]) for fam, pts in by_family.items()}


def _finite(value: Any) -> Any:
    """Strict JSON has no inf/nan: an undefined R^2 is written as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def fits_to_json(fits: Mapping[str, FamilyFit]) -> dict[str, Any]:
    return {fam: _finite(fit.to_dict()) for fam, fit in fits.items()}


def as_family_fits(fits: Mapping[str, FamilyFit | Mapping[str, Any]]) -> dict[str, FamilyFit]:
    """Accept fits fresh from fit_results or read back from fit.json (its provenance record set aside)."""
    return {fam: f if isinstance(f, FamilyFit) else FamilyFit.from_dict(f) for fam, f in fits.items()
            if fam not in ("provenance", "earlier_provenance")}
