"""Helpers for the trainer tests: a throw-away git history and a tiny model, built by the tests."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

# A well-formed but fake key: the miner must drop every example that shows it.
PLANTED_KEY = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
    "-----END RSA PRIVATE KEY-----"
)
FUTURE_NAME = "zz_future_marker"

GEOMETRY_V1 = '''\
import math


def area(width, height):
    return width * height
'''

GEOMETRY_V2 = GEOMETRY_V1 + '''

def perimeter(width, height):
    total = 2 * (width + height)
    return total
'''

GEOMETRY_V3 = GEOMETRY_V2.replace(
    "def area(width, height):\n",
    'def area(width, height):\n    """Area of a width x height rectangle."""\n',
)

GEOMETRY_V4 = GEOMETRY_V3 + '''

def circle_area(radius):
    squared = radius * radius
    return math.pi * squared
'''

GEOMETRY_V5 = GEOMETRY_V4.replace(
    "    total = 2 * (width + height)\n    return total\n",
    "    doubled_sum = 2 * (width + height)\n    return round(doubled_sum, 6)\n",
)

GEOMETRY_V6 = GEOMETRY_V5 + f'''

def {FUTURE_NAME}(values):
    ordered = sorted(values)
    return ordered[len(ordered) // 2]
'''

KEYS_PY = f'''\
def load_signing_key():
    pem = """{PLANTED_KEY}"""
    return pem.encode("ascii")
'''

TEST_GEOMETRY = '''\
from pkg.geometry import area


def test_area_of_rectangle():
    assert area(2, 3) == 6
    assert area(0, 5) == 0
'''

UTIL_V1 = '''\
def clamp(value, low, high):
    if value < low:
        return low
    return min(value, high)
'''

UTIL_V2 = UTIL_V1 + '''

def lerp(start, end, fraction):
    span = end - start
    return start + span * fraction
'''

VENDORED = '''\
def vendored_helper(items):
    return [item for item in items if item]
'''

MINIFIED = "function a(b){return b+1}" + ";var c=function(d){return d*2}" * 60 + "\n"

# (message, {path: contents or None to delete})
HISTORY: list[tuple[str, dict[str, str | None]]] = [
    ("add area", {"pkg/__init__.py": "", "pkg/geometry.py": GEOMETRY_V1, "README.md": "# demo\n"}),
    ("add perimeter, vendored lib, minified bundle", {
        "pkg/geometry.py": GEOMETRY_V2, "third_party/lib.py": VENDORED, "web/app.js": MINIFIED,
    }),
    ("document area", {"pkg/geometry.py": GEOMETRY_V3}),
    ("signing key helper", {"pkg/keys.py": KEYS_PY, ".env": "API_TOKEN=abc123secretvalue\n"}),
    ("test area", {"tests/test_geometry.py": TEST_GEOMETRY}),
    ("add clamp", {"pkg/util.py": UTIL_V1}),
    ("add circle area", {"pkg/geometry.py": GEOMETRY_V4}),
    ("round perimeter", {"pkg/geometry.py": GEOMETRY_V5}),
    ("add lerp", {"pkg/util.py": UTIL_V2}),
    ("add median", {"pkg/geometry.py": GEOMETRY_V6}),
]


def git(repo: Path, *args: str, env: dict | None = None) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True, env=env).stdout


def make_history(repo: Path, history=HISTORY) -> list[str]:
    """Create `repo` with one commit per history entry (a day apart); returns the shas."""
    repo.mkdir(parents=True, exist_ok=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "dev@example.invalid")
    git(repo, "config", "user.name", "Dev")
    git(repo, "config", "commit.gpgsign", "false")
    shas = []
    for day, (message, files) in enumerate(history, start=1):
        for path, text in files.items():
            target = repo / path
            if text is None:
                target.unlink()
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        git(repo, "add", "-A")
        stamp = f"2024-01-{day:02d}T12:00:00+00:00"
        env = {**os.environ, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
        git(repo, "commit", "-q", "-m", message, env=env)
        shas.append(git(repo, "rev-parse", "HEAD").strip())
    return shas


def history_texts() -> list[str]:
    return [text for _, files in HISTORY for text in files.values() if text]


def build_tiny_model(folder: Path, seed: int = 0, dtype: str = "float32") -> Path:
    """A random-weight Llama (hidden 64, 2 layers, tied embeddings like SmolLM2) with a byte-level
    BPE tokenizer trained on the test history; saved as an HF folder in `dtype`."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600, special_tokens=["<|endoftext|>", "<unk>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(history_texts() * 3, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, eos_token="<|endoftext|>",
                                   bos_token="<|endoftext|>", unk_token="<unk>")
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
        eos_token_id=fast.eos_token_id, bos_token_id=fast.bos_token_id, tie_word_embeddings=True,
        # Larger than the default 0.02: peaked logits, so greedy choices are stable and a
        # small adapter can move them (tied embeddings bound the logits by their norm).
        initializer_range=0.25,
    )
    model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def register_tiny_model(home: Path, name: str = "tiny-smollm2", dtype: str = "float32") -> str:
    """Build the tiny model, convert it to CTranslate2 and register it as the served model."""
    from repolsp.models.convert import convert_hf_to_ct2
    from repolsp.models.store import Manifest, ModelStore

    store = ModelStore(home)
    build = store.new_build_dir(name)
    build_tiny_model(build / "hf", dtype=dtype)
    convert_hf_to_ct2(build / "hf", build / "ct2", "float32")
    manifest = Manifest(name=name, source="test", architecture="llama", quantization="float32",
                        family="smollm2", fim_template=None)
    store.register_from_dir(build, manifest)
    store.use(name)
    return name


@pytest.fixture(scope="session")
def history_repo(tmp_path_factory) -> tuple[Path, list[str]]:
    """A small repository whose history adds functions, a docstring, a test, a vendored folder,
    a minified file, a .env file and a planted private key."""
    repo = tmp_path_factory.mktemp("history") / "demo-repo"
    return repo, make_history(repo)


@pytest.fixture(scope="session")
def tiny_home(tmp_path_factory) -> Path:
    """A model store holding a tiny SmolLM2-like model as the served model (built once)."""
    home = tmp_path_factory.mktemp("tiny-home")
    register_tiny_model(home)
    return home
