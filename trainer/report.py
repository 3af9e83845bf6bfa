"""The before/after report: base and tuned model side by side on the held-out `test` split,
printed and saved as markdown, JSON and a PNG chart beside the run's checkpoints."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from repolsp.models.prompt import template_for
from repolsp.trainer.chart import ChartData, draw_chart
from repolsp.trainer.eval.metrics import bootstrap_mean_ci, paired_bootstrap_ci
from repolsp.trainer.evaluate import (
    EvalScores,
    edit_similarity,
    eval_examples,
    exact_match,
    score_model,
)
from repolsp.trainer.mine_priority import answer_in_prompt, code_lines
from repolsp.trainer.progress_bar import stdout_bar


@dataclass
class Report:
    base: EvalScores
    tuned: EvalScores
    markdown_path: Path
    chart_path: Path
    json_path: Path
    exact_match_diff: dict | None = None  # paired bootstrap of tuned - base (models.evaluate)
    by_mode: dict | None = None  # "single-line" / "multi-line" -> {n, base, tuned} exact match
    by_source: dict | None = None  # "prompt" / "history" / "new" -> {n, base, tuned} exact match

    def tuned_no_worse(self) -> bool:
        """True when the tuned model is at least as good on exact match and edit similarity
        (or there was nothing to compare)."""
        if self.tuned.n == 0:
            return True
        return (self.tuned.exact_match >= self.base.exact_match
                and self.tuned.edit_similarity >= self.base.edit_similarity - 1e-9)

    def summary_line(self) -> str:
        b, t = self.base, self.tuned
        gain = f" ({t.exact_match / b.exact_match:.1f}x)" if b.exact_match > 0 else ""
        diff = self.exact_match_diff or {}
        ci = (f", difference 95% CI [{diff['ci95'][0]:+.0%}, {diff['ci95'][1]:+.0%}]"
              if diff.get("ci95") else "")
        lines = (self.by_mode or {}).get("single-line")
        in_hunk = (f" (single in-hunk lines: {lines['base']:.0%} -> {lines['tuned']:.0%} on {lines['n']})"
                   if lines and len(self.by_mode) > 1 else "")
        return (f"held-out exact match {b.exact_match:.0%} -> {t.exact_match:.0%}{gain}{ci}{in_hunk}, "
                f"edit similarity {b.edit_similarity:.2f} -> {t.edit_similarity:.2f} "
                f"on {t.n} test examples; report: {self.markdown_path}")


def evaluation_for_manifest(report: Report, base_name: str) -> dict:
    """The report's figures as the tuned model's manifest keeps them (`repolsp.status` reads
    them there: server/model_info.py)."""
    b, t, diff = report.base, report.tuned, report.exact_match_diff or {}
    return {"baseModel": base_name, "n": t.n, "exactMatchBase": b.exact_match,
            "exactMatchTuned": t.exact_match,
            "ratio": t.exact_match / b.exact_match if b.exact_match > 0 else None,
            "meanDiff": diff.get("mean_diff"), "ci95": diff.get("ci95"),
            "editSimilarityBase": b.edit_similarity, "editSimilarityTuned": t.edit_similarity,
            "bySource": report.by_source, "report": str(report.markdown_path),
            "chart": str(report.chart_path)}


def _fmt(value: float | None, pattern: str) -> str:
    return "—" if value is None else format(value, pattern)


MODE_LABELS = {"single-line": "single lines (the in-hunk lines)", "multi-line": "multi-line spans"}


def exact_match_by_group(groups: list[str], base_hits, tuned_hits, order) -> dict:
    """Exact match of base and tuned per group (in `order`'s order, empty groups left out),
    from each example's group and exact-match outcomes."""
    out = {}
    for key in order:
        pairs = [(b, t) for g, b, t in zip(groups, base_hits, tuned_hits) if g == key]
        if pairs:
            out[key] = {"n": len(pairs), "base": sum(b for b, _ in pairs) / len(pairs),
                        "tuned": sum(t for _, t in pairs) / len(pairs)}
    return out


def exact_match_by_mode(examples, base_hits, tuned_hits) -> dict:
    """Exact match of base and tuned per kind of hole (single line, multi-line span)."""
    return exact_match_by_group([e.mode for e in examples], base_hits, tuned_hits, MODE_LABELS)


SOURCE_LABELS = {
    "prompt": "already in the prompt (prefix, suffix or snippets)",
    "history": "not in the prompt, but in the training examples",
    "new": "new code (in neither)",
}


def answer_sources(examples, train_examples) -> list[str]:
    """Where each held-out hole's answer already was, which says what kind of learning a hit
    took: "prompt" when every non-blank line of the expected completion is a line of the
    example's own prompt context (copying), else "history" when every one of them is a line of
    the training examples (recall), else "new" (neither: the model had to write it)."""
    seen: set[str] = set()
    for e in train_examples:
        seen.update(code_lines(e.prompt))
        seen.update(code_lines(e.completion))
    sources = []
    for e in examples:
        wanted = code_lines(e.completion)
        if answer_in_prompt(e):
            sources.append("prompt")
        elif wanted and all(line in seen for line in wanted):
            sources.append("history")
        else:
            sources.append("new")
    return sources


def source_table(by_source: dict) -> list[str]:
    """Markdown rows of exact match by answer source (`exact_match_by_group` over
    `answer_sources`), shared by the report and `bench/train.py`."""
    return ["| where the expected lines already were | n | base exact match | tuned exact match |",
            "|---|---|---|---|",
            *(f"| {SOURCE_LABELS.get(source, source)} | {row['n']} | {row['base']:.1%} | {row['tuned']:.1%} |"
              for source, row in by_source.items())]


def render_markdown(base: EvalScores, tuned: EvalScores, training=None, samples=(),
                    exact_match_diff: dict | None = None, by_mode: dict | None = None,
                    by_source: dict | None = None, chart_name: str | None = None) -> str:
    """The report as markdown (table, chart, training figures, a few sample completions)."""
    lines = [
        "# lsp-train: before / after",
        "",
        f"Held-out examples: {tuned.n} (`test` split: the newest commits, never trained on).",
        "",
        "| model | exact match | edit similarity | completion loss | perplexity | median latency |",
        "|---|---|---|---|---|---|",
    ]
    for label, s in (("base", base), ("tuned", tuned)):
        lines.append(
            f"| {label}: `{s.model}` | {s.exact_match:.1%} | {s.edit_similarity:.3f} | "
            f"{_fmt(s.loss, '.3f')} | {_fmt(s.perplexity, '.2f')} | {s.median_latency_ms:.0f} ms |"
        )
    if exact_match_diff and exact_match_diff.get("ci95"):
        low, high = exact_match_diff["ci95"]
        lines += ["", (f"Exact match, tuned − base: {exact_match_diff['mean_diff']:+.1%} "
                  f"(paired bootstrap 95% CI [{low:+.1%}, {high:+.1%}], n={exact_match_diff['n']}).")]
    if by_mode:
        lines += ["", "| held-out holes | n | base exact match | tuned exact match |", "|---|---|---|---|"]
        lines += [f"| {MODE_LABELS[mode]} | {row['n']} | {row['base']:.1%} | {row['tuned']:.1%} |"
                  for mode, row in by_mode.items()]
    if by_source:
        lines += ["", *source_table(by_source)]
        lines += ["", ("Hits on lines the prompt shows are copying, on lines of the training examples "
                       "recall; only the last row needs the model to write code it has not seen.")]
    if chart_name:
        lines += ["", f"![base vs tuned: metrics, paired gain, split by source]({chart_name})"]
    if training is not None:
        lines += ["", "## Training", "", training.summary()]
    if samples:
        lines += ["", "## Samples", ""]
        for expected, before, after in samples:
            lines += [f"- expected `{expected.strip()[:120]}`",
                      f"  - base `{before.strip()[:120]}`", f"  - tuned `{after.strip()[:120]}`"]
    return "\n".join(lines) + "\n"


SOURCE_SHORT = {"prompt": "in the prompt", "history": "in training", "new": "new code"}


def report_chart_data(base_hits, tuned_hits, base_similarity, tuned_similarity,
                      exact_match_diff: dict | None, by_source: dict | None) -> ChartData:
    """The report's chart: exact match and edit similarity of base and tuned with their 95%
    intervals, the paired interval of the exact-match gain, and the split by answer source."""

    def estimate(values) -> tuple:
        values = [float(v) for v in values]
        return (sum(values) / len(values) if values else 0.0, bootstrap_mean_ci(values))

    metrics = {"exact match": {"base": estimate(base_hits), "tuned": estimate(tuned_hits)},
               "edit similarity": {"base": estimate(base_similarity),
                                   "tuned": estimate(tuned_similarity)}}
    gains = {}
    if exact_match_diff and exact_match_diff.get("mean_diff") is not None:
        ci = exact_match_diff.get("ci95")
        gains["exact match\ntuned − base"] = (exact_match_diff["mean_diff"], tuple(ci) if ci else None)
    split = {SOURCE_SHORT.get(source, source): row for source, row in (by_source or {}).items()}
    return ChartData(f"lsp-train: base vs tuned on {len(base_hits)} held-out examples",
                     ["base", "tuned"], metrics, gains, split,
                     "exact match by where the answer was")


def _progress_bar(show: bool, desc: str):
    if not show:
        return None, None
    bar = stdout_bar(desc, unit="example")

    def update(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, update


def before_after_report(base_entry, tuned_entry, examples, out_dir: Path, max_examples: int = 200,
                        say: Callable[[str], None] = print, training=None, with_loss: bool = True,
                        show_progress: bool = False) -> Report:
    """Score base and tuned models on the test split and save report.md/.json/.png in out_dir."""

    held_out = eval_examples(examples, max_examples)
    say(f"evaluating base and tuned models on {len(held_out)} held-out examples ...")
    scored = []
    for label, entry in (("base", base_entry), ("tuned", tuned_entry)):
        bar, update = _progress_bar(show_progress, f"evaluating {label}")
        try:
            scored.append(score_model(entry, held_out, template_for(entry.manifest.fim_template),
                                      with_loss=with_loss, progress=update))
        finally:
            if bar is not None:
                bar.close()
    (base, base_texts), (tuned, tuned_texts) = scored
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    samples = [(e.completion, b, t) for e, b, t in zip(held_out, base_texts, tuned_texts)][:8]
    base_hits = [exact_match(b, e.completion) for e, b in zip(held_out, base_texts)]
    tuned_hits = [exact_match(t, e.completion) for e, t in zip(held_out, tuned_texts)]
    diff = paired_bootstrap_ci(base_hits, tuned_hits)
    markdown = out_dir / "report.md"
    chart = out_dir / "report.png"
    data = out_dir / "report.json"
    by_mode = exact_match_by_mode(held_out, base_hits, tuned_hits)
    sources = answer_sources(held_out, [e for e in examples if e.split == "train"])
    by_source = exact_match_by_group(sources, base_hits, tuned_hits, SOURCE_LABELS)
    markdown.write_text(render_markdown(base, tuned, training, samples, diff, by_mode, by_source,
                                        chart.name), encoding="utf-8")
    outputs = [{"commit": e.commit, "path": e.path, "mode": e.mode, "source": source,
                "expected": e.completion, "base": b, "tuned": t}
               for e, source, b, t in zip(held_out, sources, base_texts, tuned_texts)]
    data.write_text(json.dumps({"base": base.to_json(), "tuned": tuned.to_json(),
                                "exact_match_diff": diff, "exact_match_by_mode": by_mode,
                                "exact_match_by_source": by_source,
                                "training": training.stats_for_manifest() if training else None,
                                "examples": outputs}, indent=2), encoding="utf-8")
    similarities = [[edit_similarity(text, e.completion) for e, text in zip(held_out, texts)]
                    for texts in (base_texts, tuned_texts)]
    draw_chart(chart, report_chart_data(base_hits, tuned_hits, *similarities, diff, by_source))
    report = Report(base, tuned, markdown, chart, data, diff, by_mode, by_source)
    print(render_markdown(base, tuned, exact_match_diff=diff, by_mode=by_mode, by_source=by_source),
          flush=True)
    return report
