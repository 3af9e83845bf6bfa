"""The repository's source files as they were at one point of the history, kept up to date
commit by commit, with the server's workspace index over them (for definitions and retrieval).

The miner builds each commit's prompts from the snapshot *before* the commit is applied, so no
prompt sees code written later than the change it teaches.
"""

from __future__ import annotations

import logging
from pathlib import Path

from repolsp.server.context.languages import TREE_LANGUAGES, language_for
from repolsp.trainer import gitlog
from repolsp.trainer.filters import MAX_FILE_BYTES, content_excluded, path_excluded
from repolsp.trainer.secrets import is_env_file

log = logging.getLogger(__name__)


def _indexable(path: str) -> bool:

    return (path_excluded(path) is None and not is_env_file(path)
            and language_for(None, path) in TREE_LANGUAGES)


class Snapshot:
    """path -> text of the supported, non-excluded files at the current point of the walk."""

    def __init__(self, blobs: gitlog.BlobReader | None = None, use_index: bool = True):
        self.blobs = blobs
        self.files: dict[str, str] = {}
        self._index = None
        self._index_failed = not use_index
        # The git history as of this point of the walk (`server.context.history.HistoryIndex`),
        # or None: prompts then carry no history lines, as with the server's `history` off.
        self.history = None

    # -- reading ----------------------------------------------------------------------------------
    def text(self, path: str) -> str | None:
        """The file's text at this point of the history, or None."""
        return self.files.get(path)

    @property
    def index(self):
        """The server's WorkspaceIndex over the snapshot (None if unavailable)."""
        if self._index is None and not self._index_failed:
            try:
                from repolsp.server.context.index import WorkspaceIndex
            except ImportError:
                self._index_failed = True
                log.warning("workspace index unavailable: prompts carry no retrieved snippets")
                return None
            # A root that does not exist: files come from git objects, never from the disk
            # (the work tree holds the newest code, which past prompts must not see).
            self._index = WorkspaceIndex([Path("/nonexistent-repolsp-history-snapshot")])
            for path, text in self.files.items():
                self._index_update(path, text)
        return self._index

    # -- changing ---------------------------------------------------------------------------------
    def load_tree(self, entries: list[tuple[str, str, int]]) -> None:
        """Fill from `gitlog.tree_files` output (the tree before the first walked commit)."""
        for path, blob, size in entries:
            if size > MAX_FILE_BYTES or not _indexable(path) or self.blobs is None:
                continue
            data = self.blobs.read(blob)
            if data is not None and content_excluded(data) is None:
                self.set(path, data.decode("utf-8", "replace"))

    def set(self, path: str, text: str) -> None:
        self.files[path] = text
        if self._index is not None:
            self._index_update(path, text)

    def remove(self, path: str) -> None:
        if self.files.pop(path, None) is not None and self._index is not None:
            try:
                self._index.remove_file(path)
            except Exception:  # the index is best effort, like in the server
                log.debug("index remove failed for %s", path, exc_info=True)

    def apply(self, changes: list[gitlog.FileChange], new_texts: dict[str, str]) -> None:
        """Move the snapshot past one commit (`new_texts`: contents of the mined files)."""
        for change in changes:
            if change.old_path and (change.status in ("D", "R")):
                self.remove(change.old_path)
            if change.status == "D":
                continue
            text = new_texts.get(change.path)
            if text is not None:
                self.set(change.path, text)
            else:
                self.remove(change.path)  # now excluded (e.g. became minified)

    def _index_update(self, path: str, text: str) -> None:
        try:
            self._index.update_file(path, text)
        except Exception:
            log.debug("index update failed for %s", path, exc_info=True)
