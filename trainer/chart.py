"""The one before/after chart of `lsp-train`'s report and `lsp-eval`'s, drawn with matplotlib
(Agg backend: no display needed). Up to three panels side by side:

1. the metrics of each model as bars with their 95% intervals;
2. the paired gain of each compared model over the baseline (mean difference over the same
   items and its bootstrap 95% interval, a point with error bars around a zero line): the
   figure that says whether the gain is real;
3. a split of exact match by group, e.g. where the expected lines already were
   (prompt / history / new) in `lsp-train`'s report, or the kind of hole in `lsp-eval`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# mean, and its 95% interval (low, high) or None when there is none.
Estimate = tuple[float, "tuple[float, float] | None"]


@dataclass
class ChartData:
    """What one chart shows; every panel but the first is optional."""

    title: str
    models: list[str]  # bar order; the first is the baseline
    metrics: dict[str, dict[str, Estimate]]  # metric label -> model -> estimate
    gains: dict[str, Estimate] = field(default_factory=dict)  # label -> paired difference
    split: dict[str, dict] = field(default_factory=dict)  # group -> {"n": n, model: value}
    split_title: str = "exact match by group"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: never open a window, work without a display
    import matplotlib.pyplot as plt

    return plt


def _error_bars(estimates: list[Estimate]) -> list[list[float]]:
    """Matplotlib's yerr rows (distance below, above) from (mean, interval) pairs."""
    low = [max(0.0, mean - ci[0]) if ci else 0.0 for mean, ci in estimates]
    high = [max(0.0, ci[1] - mean) if ci else 0.0 for mean, ci in estimates]
    return [low, high]


def _bar_panel(axis, groups: list[str], tick_labels: list[str], models: list[str], value_of,
               title: str, with_errors: bool) -> None:
    """Grouped bars: one group per key, one bar per model, values as percentages."""
    width = 0.8 / max(1, len(models))
    for index, model in enumerate(models):
        estimates = [value_of(group, model) for group in groups]
        positions = [g + (index - (len(models) - 1) / 2) * width for g in range(len(groups))]
        bars = axis.bar(positions, [100 * mean for mean, _ in estimates], width, label=model,
                        yerr=([[100 * v for v in row] for row in _error_bars(estimates)]
                              if with_errors else None), capsize=3)
        axis.bar_label(bars, labels=[f"{100 * mean:.0f}" for mean, _ in estimates],
                       fontsize="x-small", padding=2)
    axis.set_xticks(range(len(groups)), tick_labels, fontsize="small")
    axis.set_ylim(0, 105)
    axis.set_ylabel("%")
    axis.set_title(title, fontsize="medium")
    axis.legend(fontsize="x-small", loc="upper right")


def _gain_panel(axis, gains: dict[str, Estimate]) -> None:
    """Paired differences as points with their 95% intervals; zero marked."""
    labels = list(gains)
    means = [100 * gains[label][0] for label in labels]
    errors = [[100 * v for v in row] for row in _error_bars([gains[label] for label in labels])]
    axis.axvline(0, color="grey", linewidth=1)
    axis.errorbar(means, range(len(labels)), xerr=errors, fmt="o", capsize=4, color="tab:green")
    for y, (label, (mean, ci)) in enumerate(gains.items()):
        text = f"{100 * mean:+.1f}" + (f" [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}]" if ci else "")
        axis.annotate(text, (100 * mean, y), textcoords="offset points", xytext=(0, 8),
                      ha="center", fontsize="x-small")
    axis.set_yticks(range(len(labels)), labels, fontsize="small")
    axis.set_ylim(-0.7, len(labels) - 0.3)
    axis.set_xlabel("points")
    axis.set_title("paired gain, 95% interval", fontsize="medium")


def draw_chart(path: Path, data: ChartData) -> Path:
    """Write `data` as a PNG at `path` (see the module docstring); returns the path."""
    plt = _pyplot()
    panels = 1 + bool(data.gains) + bool(data.split)
    ratios = [max(2, len(data.metrics) * len(data.models) * 0.8)] + (
        [2.2] if data.gains else []) + ([max(2, len(data.split) * len(data.models) * 0.8)]
                                        if data.split else [])
    figure, axes = plt.subplots(1, panels, figsize=(2.0 + 0.9 * sum(ratios), 3.8),
                                gridspec_kw={"width_ratios": ratios}, squeeze=False)
    axes = list(axes[0])
    metric_labels = list(data.metrics)
    _bar_panel(axes.pop(0), metric_labels, metric_labels, data.models,
               lambda metric, model: data.metrics[metric].get(model, (0.0, None)),
               "held-out metrics, 95% interval", with_errors=True)
    if data.gains:
        _gain_panel(axes.pop(0), data.gains)
    if data.split:
        groups = list(data.split)
        _bar_panel(axes.pop(0), groups, [f"{g}\nn={data.split[g]['n']}" for g in groups],
                   data.models, lambda group, model: (data.split[group].get(model, 0.0), None),
                   data.split_title, with_errors=False)
    figure.suptitle(data.title, fontsize="large")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
