"""What the tools share: the repo root for imports, one downloader and one archive-member safety check.

Every tool starts with the same two lines, so `python tools/NAME.py` works from any folder:
    if __package__ in (None, ""):  # run as a script: make the repo root (src/, tools/) importable
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
and then imports `src` and `tools.common` normally.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import tarfile
from pathlib import Path, PurePosixPath
from urllib.error import HTTPError
from urllib.request import Request, urlopen

from tqdm import tqdm

logger = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[1]
CHUNK_BYTES = 1 << 20


class ToolError(RuntimeError):
    """A data-preparation step failed; the message names the file or URL and what to do."""


class UnsafeArchiveError(ToolError):
    """An archive member could write outside the target folder or is not a plain file or folder."""


class DownloadError(ToolError):
    """A download failed for good (HTTP 4xx, wrong size, md5 mismatch, too many interruptions)."""


class IncompleteDownload(ConnectionError):
    """The stream ended early; the next attempt resumes from the bytes already written."""


# ---------------------------------------------------------------------------------------------------- archives


def check_member_name(name: str, archive: Path, kind: str = "archive") -> PurePosixPath:
    """The member's relative path; absolute paths, drive letters and '..' components are refused.

    Raises:
        UnsafeArchiveError: "unsafe {kind} {archive}: member {name!r} has ...".
    """
    where = f"unsafe {kind} {archive}: member {name!r}"
    if name.startswith(("/", "\\")) or re.match(r"[A-Za-z]:", name):
        raise UnsafeArchiveError(f"{where} has an absolute path")
    if ".." in re.split(r"[\\/]", name):
        raise UnsafeArchiveError(f"{where} has a '..' path component")
    return PurePosixPath(name.replace("\\", "/"))


def check_tar_member(tar_path: Path, member: tarfile.TarInfo) -> PurePosixPath:
    """Refuse a tar member that is a link, a device or special file, or whose name escapes the target."""
    where = f"unsafe tarball {tar_path}: member {member.name!r}"
    if member.issym() or member.islnk():
        raise UnsafeArchiveError(f"{where} is a link to {member.linkname!r}")
    if not (member.isfile() or member.isdir()):
        raise UnsafeArchiveError(f"{where} is a device, fifo or other special file")
    return check_member_name(member.name, tar_path, "tarball")


# ---------------------------------------------------------------------------------------------------- downloading


def file_md5(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB blocks."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(CHUNK_BYTES), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------------------------------- downloading


def download_file(
    url: str, dest: Path, md5: str | None = None, retries: int = 3, timeout: float = 60.0, progress: bool = False
) -> None:
    """Fetch `url` into `dest` through `dest.part`, resuming it with Range requests; rename only when verified.

    Raises:
        DownloadError: HTTP 4xx, too many bytes, too many interruptions, or md5 mismatch (the bad file is removed).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    for attempt in range(retries + 1):
        try:
            _fetch(url, part, timeout, progress)
            break
        except (OSError, http.client.HTTPException) as err:
            if attempt == retries:
                raise DownloadError(
                    f"download of {url} failed after {attempt + 1} attempts: {err}; {part} is kept, run again to resume"
                ) from err
            logger.warning("download of %s interrupted (%s); resuming", url, err)
    if md5 is not None:
        actual = file_md5(part)
        if actual != md5:
            part.unlink()
            raise DownloadError(f"md5 mismatch for {url}: expected {md5}, got {actual}; the download was removed")
    os.replace(part, dest)
    logger.info("downloaded %s -> %s", url, dest)


def _fetch(url: str, part: Path, timeout: float, progress: bool) -> None:
    """One attempt: append the missing bytes to `part`; raises IncompleteDownload when the stream ends early."""
    offset = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={offset}-"} if offset else {}
    try:
        resp = urlopen(Request(url, headers=headers), timeout=timeout)
    except HTTPError as err:
        if err.code == 416 and offset:
            _handle_unsatisfiable(url, part, offset, err.headers.get("Content-Range", ""))
            return
        if 400 <= err.code < 500:
            raise DownloadError(f"cannot download {url}: HTTP {err.code} {err.reason}") from err
        raise
    with resp:
        offset, total = _response_range(resp, offset, url)
        bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024, disable=not progress)
        with open(part, "ab" if offset else "wb") as f, bar:
            bar.set_description(part.name[: -len(".part")])
            for chunk in iter(lambda: resp.read(CHUNK_BYTES), b""):
                f.write(chunk)
                bar.update(len(chunk))
    _check_size(url, part, total)


def _response_range(resp: http.client.HTTPResponse, offset: int, url: str) -> tuple[int, int | None]:
    """(byte offset the body starts at, expected final file size or None) from the status and headers."""
    length = resp.headers.get("Content-Length")
    if resp.status == 206:
        header = resp.headers.get("Content-Range", "")
        m = re.fullmatch(r"bytes (\d+)-(\d+)/(\d+|\*)", header.strip())
        if m is None or int(m[1]) != offset:
            raise DownloadError(f"{url}: asked for bytes from {offset}, server sent Content-Range {header!r}")
        if m[3] != "*":
            return offset, int(m[3])
        return offset, offset + int(length) if length is not None else None
    if offset:
        logger.warning("%s: server ignored the Range request; downloading from the start", url)
    return 0, int(length) if length is not None else None


def _handle_unsatisfiable(url: str, part: Path, offset: int, content_range: str) -> None:
    """HTTP 416 on resume: the part is complete when its size is the file's size; otherwise start over."""
    m = re.fullmatch(r"bytes \*/(\d+)", content_range.strip())
    if m is not None and int(m[1]) == offset:
        return
    part.unlink()
    raise IncompleteDownload(f"{url}: server refused to resume at byte {offset} ({content_range!r}); starting over")


def _check_size(url: str, part: Path, total: int | None) -> None:
    """Compare the part's size with the announced size: short means resume, long means the file is bad."""
    size = part.stat().st_size
    if total is None:
        logger.warning("%s: server sent no Content-Length; size not checked", url)
    elif size < total:
        raise IncompleteDownload(f"{url}: connection ended after {size} of {total} bytes")
    elif size > total:
        part.unlink()
        raise DownloadError(f"{url}: got {size} bytes but the server announced {total}; the download was removed")
