"""workspace/executeCommand: status, model reload/switch, acceptance feedback, training."""

from __future__ import annotations

from pathlib import Path

from lsprotocol import types
from repolsp.server import progress
from repolsp.server.context.document import uri_to_path
from repolsp.server.features.inline_completion import ACCEPT_COMMAND
from repolsp.server.model_info import training_status
from repolsp.server.server import RepolspServer
from repolsp.server.training import IdleTrainer, TrainingJob


def register(server: RepolspServer) -> None:
    # `lsp-train --incremental` when idle; does nothing unless the user opts in (`trainWhenIdle`).
    server.idle_trainer = IdleTrainer(server)
    server.idle_trainer.start()

    @server.command("repolsp.status")
    def status(ls: RepolspServer, *args) -> dict:
        # The served model's measured gain and the newest training report (editors show it).
        return {**ls.status(), **training_status(ls.model_name, ls.workspace_root)}

    @server.command("repolsp.reloadModel")
    def reload_model(ls: RepolspServer, *args) -> dict:
        ls.start_loading()
        return {"state": str(ls.engine_state)}

    @server.command("repolsp.useModel")
    def use_model(ls: RepolspServer, *args) -> dict:
        if not args or not isinstance(args[0], str) or not args[0]:
            ls.show("repolsp.useModel needs a model name", types.MessageType.Warning)
            return {"ok": False}
        ls.apply_settings({"model": args[0]}, "repolsp.useModel")
        ls.cli_config.model = args[0]
        ls.start_loading()
        return {"ok": True, "model": args[0]}

    @server.command(ACCEPT_COMMAND)
    def accept(ls: RepolspServer, *args) -> dict:
        suggestion_id = args[0] if args else None
        return {"recorded": bool(suggestion_id) and ls.record_accepted(str(suggestion_id))}

    @server.command("repolsp.train")
    def train(ls: RepolspServer, *args) -> dict:
        """Args: [folderUri?, extra lsp-train flags...]; default folder: the workspace root."""
        if ls.training is not None and ls.training.running:
            ls.show("training is already running", types.MessageType.Warning)
            return {"started": False}
        strings = [a for a in args if isinstance(a, str)]
        root = ls.workspace_root
        if strings and strings[0].startswith("file:"):
            path = uri_to_path(strings.pop(0))
            root = Path(path) if path else None
        if root is None or not root.is_dir():
            ls.show("open a folder (workspace) to train on its history", types.MessageType.Error)
            return {"started": False}
        ls.training = TrainingJob(ls, root, extra_args=strings)
        ls.training.start()
        # The token lets a client cancel from its own UI (VS Code shows this progress where it
        # offers no Cancel button).
        return {"started": True, "token": ls.training.token}

    @server.feature(types.WINDOW_WORK_DONE_PROGRESS_CANCEL)
    def cancel_progress(ls: RepolspServer, params: types.WorkDoneProgressCancelParams) -> None:
        if progress.cancel(params.token):
            return  # a "Generate tests" run or the training, while its progress shows
        job = ls.training
        if job is not None and job.token == params.token:
            job.cancel()
