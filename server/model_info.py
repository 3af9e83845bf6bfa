"""What `repolsp.status` says about the served model: whether `lsp-train` made it, the gain its
before/after report measured, and where that report is.

`lsp-train` writes the figures into the tuned model's manifest (`extra["evaluation"]`, see
trainer/report.py `evaluation_for_manifest`); the server only reads them, so it never imports
the trainer.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from repolsp.models.store import MANIFEST_NAME, ModelStore
from repolsp.server.workspace_data import data_dir_for

log = logging.getLogger(__name__)


def gain_summary(evaluation: dict) -> str:
    """One line: 'exact match 10.5% -> 15.5% (1.48x; paired 95% CI [+2.5, +7.8] points; n=400)'."""
    base, tuned = evaluation.get("exactMatchBase"), evaluation.get("exactMatchTuned")
    if not isinstance(base, (int, float)) or not isinstance(tuned, (int, float)):
        return ""
    ratio = f"{tuned / base:.2f}x" if base > 0 else "no base hits"
    ci = evaluation.get("ci95")
    interval = (f"; paired 95% CI [{100 * ci[0]:+.1f}, {100 * ci[1]:+.1f}] points"
                if isinstance(ci, list) and len(ci) == 2 else "")
    count = f"; n={evaluation['n']}" if evaluation.get("n") else ""
    return f"exact match {base:.1%} -> {tuned:.1%} ({ratio}{interval}{count}) on held-out commits"


def _manifest(store: ModelStore, name: str) -> dict | None:
    try:
        return json.loads((store.models_dir / name / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def served_model_facts(name: str, store: ModelStore | None = None) -> dict:
    """{name, baseModel, tuned, gain, summary, report, chart} of the model called `name`
    (gain and report None when `lsp-train` did not evaluate it)."""
    facts = {"name": name, "baseModel": None, "tuned": False, "gain": None, "summary": "",
             "report": None, "chart": None}
    if not name or name == "fake":
        return facts
    manifest = _manifest(store or ModelStore(), name)
    if not isinstance(manifest, dict):
        return facts
    extra = manifest.get("extra") if isinstance(manifest.get("extra"), dict) else {}
    evaluation = extra.get("evaluation") if isinstance(extra.get("evaluation"), dict) else None
    facts["baseModel"] = manifest.get("base_model")
    facts["tuned"] = "training" in extra  # a trimmed model has a base_model too, and no training
    if evaluation:
        facts["gain"] = evaluation
        facts["summary"] = gain_summary(evaluation)
        facts["report"] = evaluation.get("report")
        facts["chart"] = evaluation.get("chart")
    return facts


def latest_training_report(root: Path | None) -> str | None:
    """The newest `lsp-train` report of the workspace (its default run folders: `train`, and
    `train-incremental` for --incremental), if any."""
    if root is None:
        return None
    folder = data_dir_for(root)
    reports = [p for p in (folder / "train" / "report.md", folder / "train-incremental" / "report.md")
               if p.is_file()]
    return str(max(reports, key=lambda p: p.stat().st_mtime)) if reports else None


def training_status(model_name: str, root: Path | None) -> dict:
    """The status fields: `servedModel` (see `served_model_facts`) and `trainingReport` (the
    served model's report, else the workspace's newest one: a run that kept the old model)."""
    try:
        facts = served_model_facts(model_name)
    except Exception:
        log.debug("cannot read the served model's manifest", exc_info=True)
        facts = served_model_facts("")
    report = facts["report"] if facts["report"] and Path(facts["report"]).is_file() else None
    return {"servedModel": facts, "trainingReport": report or latest_training_report(root)}
