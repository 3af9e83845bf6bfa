"""A loopback HTTP server that answers the Hugging Face hub routes `huggingface_hub` uses to
download a model repository, serving folders the tests build.

Routes (as huggingface_hub 2.x calls them):
  GET  /api/models/{repo}/revision/{rev}        model info: commit sha and file list
  GET  /api/models/{repo}/tree/{rev}?recursive  file listing with sizes, git blob ids, LFS sha256
  HEAD /{repo}/resolve/{rev}/{file}              ETag, X-Repo-Commit, Content-Length
  GET  /{repo}/resolve/{rev}/{file}              the bytes (Range: bytes=N- gives 206)

Faults for the tests: `cut_after[file] = n` sends the full Content-Length but never a byte past
offset n, then closes the connection (a download cut off, however often it is retried);
`cut_once` does it to the first GET only (a network drop that a retry gets over); `gated`
repositories answer 403 GatedRepo; `corrupt` serves files with one byte
flipped at the right size (a damaged download).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Self
from urllib.parse import unquote, urlsplit

_INFO = re.compile(r"^/api/models/([^/]+/[^/]+)/revision/([^/]+)$")
_TREE = re.compile(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)$")
_RESOLVE = re.compile(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    """One repository: a folder's files at one commit."""

    folder: Path
    commit: str
    files: dict[str, bytes] = field(default_factory=dict)

    @classmethod
    def of(cls, folder: Path) -> Repo:
        files = {p.relative_to(folder).as_posix(): p.read_bytes()
                 for p in sorted(folder.rglob("*")) if p.is_file()}
        commit = hashlib.sha1(b"".join(hashlib.sha1(d).digest() for d in files.values())).hexdigest()
        return cls(folder, commit, files)

    def is_lfs(self, name: str) -> bool:
        return name.endswith((".safetensors", ".bin"))

    def etag(self, name: str) -> str:
        data = self.files[name]
        return hashlib.sha256(data).hexdigest() if self.is_lfs(name) else git_blob_id(data)

    def tree(self) -> list[dict]:
        entries = []
        for name, data in self.files.items():
            entry = {"type": "file", "path": name, "size": len(data), "oid": git_blob_id(data)}
            if self.is_lfs(name):
                entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                "pointerSize": 134}
            entries.append(entry)
        return entries


class LoopbackHub:
    """Start with `with LoopbackHub() as hub:`; `hub.endpoint` is the HF_ENDPOINT to use."""

    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.cut_after: dict[str, int] = {}
        self.cut_once: dict[str, int] = {}  # as cut_after, for the first GET only
        self.gated: set[str] = set()  # repositories whose licence this client has not accepted
        self.corrupt: set[str] = set()
        self.requests: list[tuple[str, str, str]] = []  # (method, path, Range header)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, repo_id: str, folder: Path) -> Repo:
        self.repos[repo_id] = Repo.of(folder)
        return self.repos[repo_id]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # keep the test output clean
                pass

            def do_HEAD(self) -> None:
                self._answer(head=True)

            def do_GET(self) -> None:
                self._answer(head=False)

            def _json(self, data, status: int = 200, headers: dict | None = None) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def _not_found(self, code: str) -> None:
                self._json({"error": code}, 404, {"X-Error-Code": code})

            def _answer(self, head: bool) -> None:
                path = unquote(urlsplit(self.path).path)
                hub.requests.append((self.command, path, self.headers.get("Range", "")))
                for pattern, route in ((_INFO, self._info), (_TREE, self._tree),
                                       (_RESOLVE, self._resolve)):
                    match = pattern.match(path)
                    if match:
                        repo = hub.repos.get(match.group(1))
                        if repo is None:
                            return self._not_found("RepoNotFound")
                        if match.group(2) not in ("main", repo.commit):
                            return self._not_found("RevisionNotFound")
                        if match.group(1) in hub.gated:
                            return self._json({"error": "gated"}, 403, {"X-Error-Code": "GatedRepo"})
                        return route(repo, match, head)
                self._not_found("EntryNotFound")

            def _info(self, repo: Repo, match, head: bool) -> None:
                self._json({"id": match.group(1), "sha": repo.commit, "private": False,
                            "siblings": [{"rfilename": name} for name in repo.files]})

            def _tree(self, repo: Repo, match, head: bool) -> None:
                self._json(repo.tree())

            def _resolve(self, repo: Repo, match, head: bool) -> None:
                name = match.group(3)
                if name not in repo.files:
                    return self._not_found("EntryNotFound")
                data = repo.files[name]
                if name in hub.corrupt:
                    data = bytes([data[0] ^ 0xFF]) + data[1:]
                start = 0
                ranged = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
                if ranged and not head:
                    start = int(ranged.group(1))
                self.send_response(206 if start else 200)
                self.send_header("ETag", f'"{repo.etag(name)}"')
                self.send_header("X-Repo-Commit", repo.commit)
                self.send_header("Accept-Ranges", "bytes")
                self.send_header("Content-Length", str(len(data) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
                self.end_headers()
                if head:
                    return
                cut = hub.cut_once.pop(name, None)
                cut = hub.cut_after.get(name) if cut is None else cut
                if cut is not None and cut < len(data):
                    self.wfile.write(data[start:max(start, cut)])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data[start:])

        return Handler
