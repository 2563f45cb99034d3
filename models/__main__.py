"""`python -m models list | fetch`: which model files this machine has, and getting the downloadable ones."""
from __future__ import annotations

import argparse
import importlib.metadata
import logging
import sys
from pathlib import Path
from typing import Sequence

from .fetch import fetch_models
from .registry import MODELS, ModelSpec, default_download_dir, locate, provenance, search_dirs

# Distributions that all install the same `onnxruntime` module (the last installed wins).
ORT_DISTRIBUTIONS = (
    "onnxruntime", "onnxruntime-gpu", "onnxruntime-directml", "onnxruntime-openvino",
    "onnxruntime-rocm", "onnxruntime-silicon", "onnxruntime-qnn",
)
CPU_ONLY_PROVIDERS = {"CPUExecutionProvider", "AzureExecutionProvider"}
GPU_INSTALL = "pip uninstall -y onnxruntime onnxruntime-gpu && pip install onnxruntime-gpu"

DESCRIPTION = """\
Model files of the face pipeline.

  list   show every model the project knows: where it was found (or "missing"), its size
         and licence, and whether the file there is the published one (its sha256 against
         the pinned one, or its CRC32 against the X.hash sidecar beside it, which fetch
         saves and FaceFusion's models folder has; a file that differs still loads: people
         convert and fine-tune their own); then the ONNX Runtime build and its providers.
  fetch  download models that have a public URL (default: every such model that is
         missing) with a progress bar, checking pinned sha256s, or the CRC32 sidecar a
         host publishes (FaceFusion's files, from their mirror when GitHub fails: the
         sha256 is printed so you can pin it). A file is written to a
         temp file and renamed only when complete and verified, so a failed or
         interrupted download leaves nothing behind.

Search order: --models-dir, $FACESTREAM_MODELS_DIR, ~/.insightface/models/buffalo_l,
~/.insightface/models, then the packages that embed a model. fetch writes into the
first of the directories.
"""


def _check_status(spec: ModelSpec, path: Path | None) -> str:
    """Whether the file found is the published one: 'published: ...', 'DIFFERS: ...' or 'unknown: ...'."""
    if path is None:
        return "-"
    checked = provenance(spec, path)
    verdict = {True: "published", False: "DIFFERS", None: "unknown"}[checked.matches]
    return f"{verdict}: {checked.detail}"


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def _runtime_report() -> list[str]:
    """Which onnxruntime build is imported: insightface pulls in the CPU one, which hides the GPU build."""
    import onnxruntime as ort  # here, not at the top: `fetch` does not need it

    installed = []
    for distribution in ORT_DISTRIBUTIONS:
        try:
            installed.append(f"{distribution} {importlib.metadata.version(distribution)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    providers = ort.get_available_providers()
    lines = [
        f"ONNX Runtime {ort.__version__} ({Path(ort.__file__).parent})",
        f"installed distributions: {', '.join(installed) or 'none found by importlib.metadata'}",
        f"providers: {', '.join(providers)}",
    ]
    if len(installed) > 1:
        lines.append(
            "warning: several onnxruntime distributions share the `onnxruntime` module and the last one "
            f"installed wins; keep one, e.g.: {GPU_INSTALL}"
        )
    if set(providers) <= CPU_ONLY_PROVIDERS:
        lines.append(f"hint: this is the CPU build of ONNX Runtime; for an NVIDIA GPU: {GPU_INSTALL}")
    else:
        lines.append(
            "note: a provider listed here is compiled in, not proof of a usable device; "
            "the server checks which provider each session really runs on"
        )
    return lines


def list_models(models_dir: Path | None) -> int:
    rows = [("NAME", "ROLE", "SIZE", "LOCATION", "LICENCE", "CHECK")]
    for spec in MODELS.values():
        path = locate(spec, models_dir)
        size = f"{spec.size_mb:g} MB" if spec.size_mb is not None else "?"
        location = str(path) if path else "missing"
        rows.append((spec.name, spec.role, size, location, spec.licence, _check_status(spec, path)))
    print(_table(rows))
    print(f"\nsearched: {', '.join(str(d) for d in search_dirs(models_dir))} (then embedded packages)")
    print("\n".join(["", *_runtime_report()]))
    return 0


def fetch(names: Sequence[str], models_dir: Path | None, force: bool) -> int:
    directory = default_download_dir(models_dir)
    wanted = []
    for name in dict.fromkeys(names or [spec.name for spec in MODELS.values() if spec.url]):
        spec = MODELS[name]
        found = locate(spec, models_dir)
        if spec.url is None:
            print(f"{name}: shipped by the {spec.package} package, nothing to download")
        elif found is not None and not force:
            print(f"{name}: already at {found} (--force downloads it again)")
        else:
            wanted.append(spec)
    if not wanted:
        return 0
    print(f"downloading {', '.join(spec.name for spec in wanted)} into {directory}", file=sys.stderr)
    try:
        outcomes = fetch_models(wanted, directory)
    except KeyboardInterrupt:
        print("interrupted: the download in progress was discarded", file=sys.stderr)
        return 130
    for outcome in outcomes:
        if outcome.error is not None:
            print(f"{outcome.spec.name}: FAILED: {outcome.error}", file=sys.stderr)
        else:
            if outcome.spec.sha256:
                check = "sha256 verified"
            elif outcome.crc32_checked:
                check = f"CRC32 matches the published sidecar; sha256 {outcome.sha256}, to pin it"
            else:
                check = f"sha256 {outcome.sha256}, no pinned hash to check"
            print(f"{outcome.spec.name}: saved {outcome.path} ({check})")
    return 1 if any(outcome.error for outcome in outcomes) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m models", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{list,fetch}")
    listing = commands.add_parser("list", help="show found and missing models, sha256 checks and ONNX Runtime providers")
    getting = commands.add_parser("fetch", help="download models into the models directory")
    getting.add_argument("names", nargs="*", metavar="NAME", help=f"models to download (default: every missing downloadable one); known: {', '.join(MODELS)}")
    getting.add_argument("--force", action="store_true", help="download even when the model is already present")
    for command in (listing, getting):
        command.add_argument("--models-dir", type=Path, help="directory searched first and the one fetch writes into")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "list":
        return list_models(args.models_dir)
    unknown = [name for name in args.names if name not in MODELS]
    if unknown:
        getting.error(f"unknown model {', '.join(unknown)}; valid names: {', '.join(MODELS)}")
    return fetch(args.names, args.models_dir, args.force)


if __name__ == "__main__":
    sys.exit(main())
