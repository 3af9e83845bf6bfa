"""Errors of `lsp-train`; each message is one line a user can act on."""


class TrainerError(Exception):
    """Mining, training or export cannot go on (not a repo, no history, no model, ...)."""


class NoExamplesError(TrainerError):
    """The history yielded no training examples."""


class TrainingInterrupted(TrainerError):
    """Training stopped early (Ctrl-C); a checkpoint was kept."""
