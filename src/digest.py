"""Sidecar sha256 digests: `NAME.sha256` beside a file records its hash, checked before the file is trusted.

The file itself stays byte-for-byte what its writer produced (a plain MindSpore checkpoint stays a plain protobuf
that any MindSpore version, or the model zoo, reads). The sidecar is one line in `sha256sum` format
(`<64 hex digits>  <file name>`), so `sha256sum -c NAME.sha256` checks it by hand too. Hashing streams the file in
1 MiB chunks: memory use does not grow with the file.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

DIGEST_SUFFIX = ".sha256"
CHUNK = 1 << 20
_LINE = re.compile(r"^([0-9a-fA-F]{64})(?:\s+\*?(.+))?\s*$")


class DigestMismatch(ValueError):
    """The file's sha256 differs from its sidecar, or the sidecar is unreadable as a digest; the message names both."""


def digest_path(path: str | Path) -> Path:
    """The sidecar of `path`: `model.ckpt` -> `model.ckpt.sha256`."""
    path = Path(path)
    return path.with_name(path.name + DIGEST_SUFFIX)


def sha256_file(path: str | Path, chunk: int = CHUNK) -> str:
    """Hex sha256 of a file, read in `chunk`-byte pieces (OSError when it cannot be read)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def digest_line(hexdigest: str, path: str | Path) -> str:
    """The sidecar's content for `path` (sha256sum format, the file named without its directory)."""
    return f"{hexdigest}  {Path(path).name}\n"


def read_digest(path: str | Path) -> str | None:
    """The hex digest recorded for `path`, or None when it has no sidecar.

    Raises:
        DigestMismatch: the sidecar exists but does not hold a sha256 line (names the sidecar).
        OSError: the sidecar cannot be read.
    """
    side = digest_path(path)
    if not side.is_file():
        return None
    text = side.read_text(encoding="utf-8", errors="replace").strip()
    match = _LINE.match(text.splitlines()[0] if text else "")
    if not match:
        raise DigestMismatch(f"digest file {side} does not hold a sha256 line (64 hex digits, then the file name)")
    return match.group(1).lower()


def check_digest(path: str | Path, chunk: int = CHUNK) -> bool:
    """Check `path` against its sidecar, streaming. True when checked, False when there is no sidecar.

    Raises:
        DigestMismatch: the content differs from the recorded sha256 (or the sidecar is malformed).
        OSError: the file or the sidecar cannot be read (proves nothing about the content).
    """
    expected = read_digest(path)
    if expected is None:
        return False
    actual = sha256_file(path, chunk)
    if actual != expected:
        raise DigestMismatch(
            f"{path} does not match its sha256 digest in {digest_path(path).name} "
            f"(recorded {expected[:12]}..., file {actual[:12]}...)"
        )
    return True


def remove_with_digest(path: str | Path) -> None:
    """Delete a file and its sidecar (either may already be gone)."""
    path = Path(path)
    path.unlink(missing_ok=True)
    digest_path(path).unlink(missing_ok=True)
