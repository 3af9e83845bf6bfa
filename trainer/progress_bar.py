"""lsp-train's progress bars, one way: tqdm on stdout, which the server's training job reads
for the editor's $/progress (the `NN%` of the last redraw of each line, server/training.py)."""

from __future__ import annotations

import sys

from tqdm import tqdm


def stdout_bar(desc: str, **kwargs) -> tqdm:
    """A bar for one stage of lsp-train (mining, training, evaluating)."""
    return tqdm(desc=desc, file=sys.stdout, dynamic_ncols=True, mininterval=0.5, **kwargs)
