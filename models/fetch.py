"""Downloading model files for `python -m models fetch`, never leaving a partial file behind.

Every file is written to a temp file in its destination directory and renamed into
place (`os.replace`, atomic on one filesystem) only once it is complete and its sha256
matches the pinned one (or, for FaceFusion's files, which publish no sha256, its CRC32 the
`.hash` sidecar beside it; a failing host is retried on the file's mirror); on any failure, Ctrl-C included, the temp file is removed. A
truncated transfer is caught by comparing the bytes received with Content-Length
(http.client returns a short body silently). Models shipped inside one zip (buffalo_l)
share a single download. Only the stdlib's urllib is used, so fetching adds no
dependency; nothing here runs at import time.
"""
from __future__ import annotations

import hashlib
import http.client
import logging
import os
import tempfile
import urllib.error
import urllib.request
import zipfile
import zlib
from urllib.parse import urlparse
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Iterator, Sequence

from tqdm import tqdm

from .registry import ModelError, ModelSpec, parse_crc32, sidecar_path

log = logging.getLogger(__name__)

CHUNK = 1 << 16
USER_AGENT = "facestream-models-fetch/1"
TIMEOUT_S = 30.0  # per socket operation, not for the whole download


class FetchError(ModelError):
    """A download or extraction failed; its temp file is already removed."""


@dataclass(frozen=True)
class Fetched:
    """The outcome for one model: where it was saved, or why it was not."""

    spec: ModelSpec
    path: Path | None = None
    sha256: str | None = None
    error: str | None = None
    crc32_checked: bool = False  # matched the published CRC32 sidecar


@contextmanager
def _temp_file(dest: Path) -> Iterator[Path]:
    """A fresh temp file beside `dest`, removed on exit unless it was renamed away."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    os.close(fd)
    temp = Path(name)
    try:
        yield temp
    finally:
        temp.unlink(missing_ok=True)


@dataclass(frozen=True)
class Digests:
    sha256: str
    crc32: str  # 8 lowercase hex digits, as FaceFusion's `.hash` sidecars publish it


def _copy(source: IO[bytes], target: IO[bytes], progress: tqdm | None = None) -> tuple[int, Digests]:
    """Stream `source` into `target`; returns the byte count and the digests of what was copied."""
    digest = hashlib.sha256()
    crc = 0
    count = 0
    for block in iter(lambda: source.read(CHUNK), b""):
        target.write(block)
        digest.update(block)
        crc = zlib.crc32(block, crc)
        count += len(block)
        if progress is not None:
            progress.update(len(block))
    return count, Digests(digest.hexdigest(), format(crc, "08x"))


def _open(url: str, timeout: float):
    """The response at `url` (redirects followed), or a FetchError that says what went wrong."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        error.close()
        raise FetchError(f"HTTP {error.code} {error.reason} from {url}") from error
    except urllib.error.URLError as error:
        raise FetchError(f"cannot reach {url}: {error.reason}") from error
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(f"download from {url} failed: {error!r}") from error


def _download_to(url: str, path: Path, label: str, timeout: float) -> Digests:
    """Write the body at `url` (redirects followed) into `path`; returns its digests."""
    try:
        with _open(url, timeout) as response, open(path, "wb") as file:
            length = response.headers.get("Content-Length")
            expected = int(length) if length is not None else None
            with tqdm(total=expected, desc=label, unit="B", unit_scale=True, unit_divisor=1024) as bar:
                count, digest = _copy(response, file, bar)
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(f"download from {url} failed: {error!r}") from error
    if expected is not None and count != expected:
        raise FetchError(f"connection closed after {count} of {expected} bytes from {url}")
    return digest


def _check(spec: ModelSpec, digest: Digests) -> None:
    if spec.sha256 is not None and digest.sha256 != spec.sha256:
        raise FetchError(f"sha256 {digest.sha256} does not match the pinned {spec.sha256}: file discarded")


def _published_crc32(url: str, timeout: float) -> str:
    """The CRC32 a `.hash` sidecar publishes (8 hex digits, maybe with whitespace)."""
    try:
        with _open(url, timeout) as response:
            text = response.read(64).decode("ascii", "replace")
    except (OSError, http.client.HTTPException) as error:
        raise FetchError(f"reading {url} failed: {error!r}") from error
    crc32 = parse_crc32(text)
    if crc32 is None:
        raise FetchError(f"{url} holds no CRC32 ({text.strip()[:20]!r})")
    return crc32


def download(spec: ModelSpec, directory: Path, timeout: float = TIMEOUT_S) -> Fetched:
    """Fetch a plain (not zipped) model file into `directory` as `spec.filename`: from its URL,
    else its mirror; checked against a pinned sha256 or the host's CRC32 sidecar."""
    assert spec.url is not None and spec.archive_member is None
    dest = directory / spec.filename
    failures = []
    for url in (spec.url, *((spec.mirror,) if spec.mirror else ())):
        with _temp_file(dest) as temp:
            try:
                digest = _download_to(url, temp, spec.filename, timeout)
                _check(spec, digest)
                sidecar = hash_url(url) if spec.crc32_sidecar else None
                if sidecar is not None:
                    published = _published_crc32(sidecar, timeout)
                    if digest.crc32 != published:
                        raise FetchError(f"CRC32 {digest.crc32} does not match the published {published} "
                                         f"({sidecar}): file discarded")
            except FetchError as error:
                failures.append(str(error))
                continue
            os.replace(temp, dest)
            if sidecar is not None:
                _keep_sidecar(dest, digest.crc32)
            return Fetched(spec, dest, digest.sha256, crc32_checked=sidecar is not None)
    raise FetchError("; then from the mirror: ".join(failures))


def _keep_sidecar(dest: Path, crc32: str) -> None:
    """Save the published CRC32 beside the file (`X.hash`, FaceFusion's layout): later, `models
    list` and the server can tell whether the file there is still the published one."""
    target = sidecar_path(dest)
    with _temp_file(target) as temp:
        temp.write_text(crc32 + "\n", "ascii")
        os.replace(temp, target)


def hash_url(url: str) -> str:
    """Where a FaceFusion file's CRC32 sidecar is: `X.onnx` -> `X.hash` beside it."""
    return url.rsplit(".", 1)[0] + ".hash"


def _member(archive: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    """The entry `name`, at the zip's root or inside a folder (some model zips nest one)."""
    for info in archive.infolist():
        if info.filename == name or PurePosixPath(info.filename).name == name:
            return info
    raise FetchError(f"{name} is not in the archive")


def extract(spec: ModelSpec, archive_path: Path, directory: Path) -> Fetched:
    """Stream `spec.archive_member` out of a downloaded zip into `directory` as `spec.filename`."""
    assert spec.archive_member is not None
    dest = directory / spec.filename
    try:
        with zipfile.ZipFile(archive_path) as archive, _temp_file(dest) as temp:
            with archive.open(_member(archive, spec.archive_member)) as source, open(temp, "wb") as target:
                _, digest = _copy(source, target)
            _check(spec, digest)
            os.replace(temp, dest)
    except zipfile.BadZipFile as error:
        raise FetchError(f"bad zip archive from {spec.url}: {error}") from error
    return Fetched(spec, dest, digest.sha256)


def _fetch_archive(url: str, specs: Sequence[ModelSpec], directory: Path, timeout: float) -> list[Fetched]:
    """Download one zip once and extract every requested member; the zip is removed after."""
    archive_name = PurePosixPath(urlparse(url).path).name or "archive.zip"
    with _temp_file(directory / archive_name) as archive_path:
        try:
            _download_to(url, archive_path, archive_name, timeout)
        except FetchError as error:
            return [Fetched(spec, error=str(error)) for spec in specs]
        results = []
        for spec in specs:
            try:
                results.append(extract(spec, archive_path, directory))
            except FetchError as error:
                results.append(Fetched(spec, error=str(error)))
        return results


def fetch_models(specs: Sequence[ModelSpec], directory: Path, timeout: float = TIMEOUT_S) -> list[Fetched]:
    """Download every spec (each must have a `url`) into `directory`; one outcome per spec, in order.

    A failure of one model does not stop the others. KeyboardInterrupt propagates, after
    the temp files of the download in progress are removed.
    """
    archives: dict[str, list[ModelSpec]] = {}
    for spec in specs:
        if spec.archive_member is not None:
            archives.setdefault(spec.url, []).append(spec)
    outcomes: dict[str, Fetched] = {}
    for spec in specs:
        if spec.name in outcomes:
            continue  # extracted with an earlier model of the same archive
        if spec.archive_member is not None:
            batch = _fetch_archive(spec.url, archives[spec.url], directory, timeout)
        else:
            try:
                batch = [download(spec, directory, timeout)]
            except FetchError as error:
                batch = [Fetched(spec, error=str(error))]
        for outcome in batch:
            outcomes[outcome.spec.name] = outcome
            if outcome.error is None:
                log.info("fetched %s into %s", outcome.spec.name, outcome.path)
    return [outcomes[spec.name] for spec in specs]
