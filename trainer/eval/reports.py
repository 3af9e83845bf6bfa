"""Summaries with CIs and paired comparisons, and the JSON, markdown, chart and table outputs."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from repolsp.trainer.chart import ChartData, draw_chart
from repolsp.trainer.eval.metrics import bootstrap_mean_ci, paired_bootstrap_ci, percentile
from repolsp.trainer.eval.options import EvalOptions

METRICS = ("exact_match", "first_line_exact", "edit_similarity", "first_line_edit_similarity",
           "parse_rate", "pass_at_1", "bleu4", "chrf", "model_text", "run_rate", "pass_rate",
           "coverage")


# The metrics whose model-vs-model differences get paired bootstrap intervals.
COMPARED_METRICS = ("exact_match", "edit_similarity", "pass_at_1", "bleu4", "chrf", "pass_rate")


def _mean_of(records: list[dict], metric: str) -> float | None:
    values = [r[metric] for r in records if metric in r]
    return statistics.fmean(values) if values else None


def _mean_with_ci(values: list[float], seed: int, resamples: int) -> dict:
    if not values:
        return {"mean": None, "ci95": None, "n": 0}
    ci = bootstrap_mean_ci(values, seed, resamples)
    return {"mean": statistics.fmean(values), "ci95": list(ci) if ci else None, "n": len(values)}


def summarize(records: list[dict], options: EvalOptions, models_info: dict, facts: dict,
              null_records: list[dict] | None = None) -> dict:
    """Means with bootstrap CIs per model and task, latency percentiles, paired comparisons."""
    import ctranslate2

    seed, resamples = options.seed, options.bootstrap_resamples
    models: dict[str, dict] = {}
    for name in options.models:
        mine = [r for r in records if r["model"] == name]
        latencies = [r["latency_ms"] for r in mine]
        tasks = {}
        for task in options.tasks:
            rows = [r for r in mine if r["task"] == task]
            task_latency = [r["latency_ms"] for r in rows]
            tasks[task] = {
                "n": len(rows),
                **{metric: _mean_with_ci([r[metric] for r in rows if metric in r], seed, resamples)
                   for metric in METRICS},
                "p50_ms": percentile(task_latency, 50), "p95_ms": percentile(task_latency, 95),
                "by_kind": {kind: {"n": len(group),
                                   "exact_match": _mean_of(group, "exact_match"),
                                   "edit_similarity": _mean_of(group, "edit_similarity")}
                            for kind in sorted({r["kind"] for r in rows})
                            for group in [[r for r in rows if r["kind"] == kind]]},
            }
        models[name] = {
            **models_info.get(name, {}),
            "n": len(mine),
            # Over every item of the tasks that have the metric (the tests task has none).
            "exact_match": _mean_of(mine, "exact_match"),
            "edit_similarity": _mean_of(mine, "edit_similarity"),
            "p50_ms": percentile(latencies, 50),
            "p95_ms": percentile(latencies, 95),
            "first_token_p50_ms": percentile([r["first_token_ms"] for r in mine if r["new_tokens"]], 50),
            "cached_items": sum(r["cached"] for r in mine),
            "tasks": tasks,
        }
    comparisons = []
    baseline = options.models[0]
    for other in options.models[1:]:
        for task in options.tasks:
            base_rows = {r["id"]: r for r in records if r["model"] == baseline and r["task"] == task}
            other_rows = {r["id"]: r for r in records if r["model"] == other and r["task"] == task}
            shared = sorted(set(base_rows) & set(other_rows))
            for metric in COMPARED_METRICS:
                ids = [i for i in shared if metric in base_rows[i] and metric in other_rows[i]]
                if not ids:
                    continue
                result = paired_bootstrap_ci([base_rows[i][metric] for i in ids],
                                             [other_rows[i][metric] for i in ids], seed, resamples)
                comparisons.append({"task": task, "metric": metric, "baseline": baseline,
                                    "model": other, **result})
    null_fill = None
    if null_records:
        null_fill = {metric: _mean_with_ci([r[metric] for r in null_records if metric in r],
                                           seed, resamples)
                     for metric in ("pass_at_1", "exact_match")}
    return {
        "version": 1,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "options": {"repo": str(options.repo), "models": options.models, "holes": options.holes,
                    "tasks": options.tasks, "seed": options.seed},
        "ctranslate2": ctranslate2.__version__,
        "facts": facts,
        "models": models,
        "humaneval_null_fill": null_fill,
        "comparisons": comparisons,
        "items": records,
    }


def write_json(results: dict, path: Path) -> None:
    """The results document as JSON (per model: exact_match, edit_similarity, p50_ms, tasks...)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _pct(value: dict | float | None, digits: int = 1) -> str:
    if isinstance(value, dict):
        mean, ci = value.get("mean"), value.get("ci95")
        if mean is None:
            return "—"
        text = f"{100 * mean:.{digits}f}%"
        return f"{text} [{100 * ci[0]:.{digits}f}, {100 * ci[1]:.{digits}f}]" if ci else text
    return "—" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: dict | float | None, digits: int = 2) -> str:
    if isinstance(value, dict):
        mean, ci = value.get("mean"), value.get("ci95")
        if mean is None:
            return "—"
        return f"{mean:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]" if ci else f"{mean:.{digits}f}"
    return "—" if value is None else f"{value:.{digits}f}"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


# Per task: (column title, metric, formatter) of the report's table.
_REPORT_COLUMNS = {
    "history": [("exact", "exact_match", _pct), ("first-line exact", "first_line_exact", _pct),
                ("edit sim.", "edit_similarity", _num),
                ("first-line edit sim.", "first_line_edit_similarity", _num),
                ("parses", "parse_rate", _pct)],
    "humaneval": [("exact", "exact_match", _pct), ("first-line exact", "first_line_exact", _pct),
                  ("edit sim.", "edit_similarity", _num),
                  ("first-line edit sim.", "first_line_edit_similarity", _num),
                  ("parses", "parse_rate", _pct), ("pass@1", "pass_at_1", _pct)],
    "tests": [("parses", "parse_rate", _pct), ("runs", "run_rate", _pct),
              ("passes", "pass_rate", _pct), ("line coverage when passing", "coverage", _num),
              ("model text kept", "model_text", _pct)],
    "docstring": [("exact", "exact_match", _pct), ("summary exact", "first_line_exact", _pct),
                  ("edit sim.", "edit_similarity", _num),
                  ("summary edit sim.", "first_line_edit_similarity", _num),
                  ("BLEU-4", "bleu4", _num), ("chrF", "chrf", _num), ("parses", "parse_rate", _pct),
                  ("model text kept", "model_text", _pct)],
}


def render_report(results: dict, charts: dict[str, str] | None = None) -> str:
    """Markdown report of a results document; `charts` maps task -> PNG file name."""
    options = results["options"]
    lines = ["# lsp-eval report", ""]
    lines.append(f"Created {results['created']}; seed {options['seed']}; up to {options['holes']} "
                 f"holes per task; CTranslate2 {results['ctranslate2']}.")
    lines += ["", "| model | hash (ct2 model.bin sha256) | compute type | threads | template |",
              "|---|---|---|---|---|"]
    for name, info in results["models"].items():
        lines.append(f"| {name} | `{str(info.get('hash', ''))[:16]}` | {info.get('compute_type', '—')} "
                     f"| {info.get('threads', '—')} | {info.get('template', '—')} |")
    history = results["facts"].get("history")
    if history:
        lines += ["", (
                  f"History: {history['repo']}: {history['held_out_commits']} held-out commits "
                  f"(the newest {history['test_fraction']:g} of {history['commits_with_code']} "
                  f"commits with code; `{history['oldest_held_out'][:12]}`.."
                  f"`{history['newest_held_out'][:12]}`); "
                  f"training split = tree at `{(history['training_split_rev'] or 'none')[:12]}`; "
                  f"{history['candidate_lines']} added lines, "
                  f"{history['dropped_seen_in_training']} holes dropped as seen in training, "
                  f"{history['dropped_not_completable']} where the server would not complete."
                  + (f" Retrieval: the training split's tree indexed as the workspace "
                     f"({history['index_files']} files)." if history.get("index_files")
                     else " Retrieval: off.")
                  + (f" Note: {history['split_note']}." if history.get("split_note") else ""))]
    for task in options["tasks"]:
        lines += ["", f"## {task}", ""]
        columns = _REPORT_COLUMNS.get(task, _REPORT_COLUMNS["history"])
        lines += ["| model | n | " + " | ".join(title for title, _, _ in columns)
                  + " | p50 ms | p95 ms |", "|---" * (len(columns) + 4) + "|"]
        for name, info in results["models"].items():
            row = info["tasks"][task]
            cells = [name, str(row["n"]), *(fmt(row[metric]) for _, metric, fmt in columns),
                     _ms(row["p50_ms"]), _ms(row["p95_ms"])]
            lines.append("| " + " | ".join(cells) + " |")
        null = results.get("humaneval_null_fill")
        if task == "humaneval" and null:
            lines.append(f"| null fill `pass` | {null['pass_at_1']['n']} | {_pct(null['exact_match'])} "
                         f"| | | | | {_pct(null['pass_at_1'])} | | |")
        kinds = {kind for info in results["models"].values()
                 for kind in info["tasks"][task]["by_kind"]}
        if task == "history" and len(kinds) > 1:
            lines += ["", "By hole kind (exact / edit sim.): " + "; ".join(
                f"{name}: " + ", ".join(
                    f"{kind} n={v['n']} {100 * v['exact_match']:.0f}% / {v['edit_similarity']:.2f}"
                    for kind, v in info["tasks"][task]["by_kind"].items())
                for name, info in results["models"].items())]
        if charts and task in charts:
            lines += ["", f"![{task}]({charts[task]})"]
    if results["comparisons"]:
        lines += ["", "## Paired differences (model − baseline, bootstrap 95% CI over the same items)",
                  "", "| task | metric | baseline | model | n | difference | 95% CI |",
                  "|---|---|---|---|---|---|---|"]
        for row in results["comparisons"]:
            ci = row["ci95"]
            lines.append(f"| {row['task']} | {row['metric']} | {row['baseline']} | {row['model']} "
                         f"| {row['n']} | {row['mean_diff']:+.3f} | "
                         f"{'[' + format(ci[0], '+.3f') + ', ' + format(ci[1], '+.3f') + ']' if ci else '—'} |")
    lines += ["", ("Latency = context and prompt building (measured in this run) + engine time "
              "(measured when the output was first generated; repeat runs read it from the cache). "
              "Exact match compares whole completions after trailing-whitespace normalization; "
              "edit similarity is 1 − Levenshtein / longer length. Parses: Python files that "
              "parsed with the real code in place, re-parsed with the completion."), ""]
    return "\n".join(lines)


def chart_data(results: dict, task: str) -> ChartData:
    """One task's chart: its metrics per model with 95% intervals, the paired differences of
    each model against the first on those metrics, and exact match by kind of hole."""
    names = list(results["models"])
    metrics = {"humaneval": ["exact_match", "edit_similarity", "pass_at_1"],
               "tests": ["parse_rate", "run_rate", "pass_rate"],
               "docstring": ["edit_similarity", "bleu4", "chrf"]}.get(
                   task, ["exact_match", "edit_similarity"])
    values = {metric.replace("_", " "): {
        name: (row[metric]["mean"] or 0.0, tuple(row[metric]["ci95"]) if row[metric]["ci95"] else None)
        for name in names for row in [results["models"][name]["tasks"][task]]}
        for metric in metrics}
    gains = {f"{c['metric'].replace('_', ' ')}\n{c['model']} − {c['baseline']}":
             (c["mean_diff"], tuple(c["ci95"]) if c["ci95"] else None)
             for c in results["comparisons"]
             if c["task"] == task and c["metric"] in metrics and c["mean_diff"] is not None}
    kinds = {kind: row for name in names
             for kind, row in results["models"][name]["tasks"][task]["by_kind"].items()}
    split = {}
    if len(kinds) > 1:
        for kind in sorted(kinds):
            rows = {name: results["models"][name]["tasks"][task]["by_kind"].get(kind) for name in names}
            split[kind] = {"n": kinds[kind]["n"],
                           **{name: (row or {}).get("exact_match") or 0.0 for name, row in rows.items()}}
    return ChartData(task, names, values, gains, split, "exact match by kind of hole")


def write_charts(results: dict, folder: Path, stem: str) -> dict[str, str]:
    """PNG charts, one per task (`trainer.chart`, the same as `lsp-train`'s report's)."""
    charts = {}
    for task in results["options"]["tasks"]:
        file_name = f"{stem}-{task}.png"
        draw_chart(folder / file_name, chart_data(results, task))
        charts[task] = file_name
    return charts


def write_report(results: dict, path: Path) -> list[Path]:
    """Markdown report at path plus PNG charts beside it; returns the files written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    charts = write_charts(results, path.parent, path.stem)
    path.write_text(render_report(results, charts), encoding="utf-8")
    return [path, *(path.parent / name for name in charts.values())]


def results_table(results: dict) -> str:
    """A short plain-text summary for the terminal."""
    rows = []
    for name, info in results["models"].items():
        for task, row in info["tasks"].items():
            if task == "tests":
                scores = (f"parses {_pct(row['parse_rate'])}  runs {_pct(row['run_rate'])}  "
                          f"passes {_pct(row['pass_rate'])}")
            else:
                scores = f"exact {_pct(row['exact_match'])}  edit {_num(row['edit_similarity'])}"
            extra = f"  pass@1 {_pct(row['pass_at_1'])}" if task == "humaneval" else (
                f"  BLEU-4 {_num(row['bleu4'])}  chrF {_num(row['chrf'])}" if task == "docstring"
                else "")
            rows.append(f"{name:<20} {task:<10} n={row['n']:<4} {scores}{extra}  "
                        f"p50 {_ms(row['p50_ms'])} ms")
    null = results.get("humaneval_null_fill")
    if null:
        rows.append(f"{'null fill (pass)':<20} humaneval  pass@1 {_pct(null['pass_at_1'])}")
    return "\n".join(rows)
