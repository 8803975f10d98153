"""Download model weights into a local folder, all or nothing.

Bytes stream into a hidden temporary file next to the destination while their sha256 is computed;
only a file whose digest matches is renamed into place, so an interrupted or refused download never
leaves a partial or unverified file where a runtime would load it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from inferflux.runtime.integrity import IntegrityError, env_signature_problem, file_sha256, verify_signature

CHUNK_BYTES = 1 << 20
Progress = Callable[[int, int | None], None]
"""Called with (bytes done, total bytes or None when the server does not say)."""


class FetchError(RuntimeError):
    """The source cannot be read; the message is one readable line."""


@dataclass(frozen=True)
class Fetched:
    """A verified file in place."""

    path: Path
    sha256: str
    size: int
    reused: bool


def file_name_of(uri: str) -> str:
    """The last path segment of a source URI, the default local file name."""
    name = Path(urllib.parse.urlsplit(uri).path).name
    if not name:
        raise FetchError(f"{uri} does not end in a file name; pass --output")
    return name


def fetch(
    uri: str,
    target: Path,
    sha256: str,
    *,
    signature: str | None = None,
    public_key: Ed25519PublicKey | None = None,
    progress: Progress | None = None,
    timeout: float = 30.0,
) -> Fetched:
    """Put the verified weights of ``uri`` at ``target``; reuse an existing file with the right digest."""
    if signature is not None:
        if public_key is None:
            raise IntegrityError("a signature needs a public key to check it against")
        verify_signature(sha256, signature, public_key)
    if target.is_file() and file_sha256(target) == sha256:
        return Fetched(target, sha256, target.stat().st_size, reused=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as sink:
            actual, size = _copy(uri, sink, progress, timeout)
        if actual != sha256:
            raise IntegrityError(
                f"sha256 mismatch for {file_name_of(uri)}: expected {sha256}, got {actual}; nothing was kept"
            )
        os.replace(temp, target)
    finally:
        with suppress(FileNotFoundError):
            temp.unlink()
    return Fetched(target, sha256, size, reused=False)


def _copy(uri: str, sink: BinaryIO, progress: Progress | None, timeout: float) -> tuple[str, int]:
    """Stream ``uri`` into ``sink``; return the sha256 and the byte count."""
    scheme = urllib.parse.urlsplit(uri).scheme
    if scheme == "file":
        return _copy_stream(_open_file(uri), None, sink, progress)
    if scheme not in ("http", "https"):
        raise FetchError(f"cannot pull {scheme or 'a bare path'}:// sources; use http(s):// or file://")
    request = urllib.request.Request(uri, headers={"User-Agent": "inferflux"})  # noqa: S310 (scheme checked)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)  # noqa: S310
    except urllib.error.HTTPError as error:
        raise FetchError(f"{uri} answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FetchError(f"cannot reach {uri}: {reason}") from None
    with response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        return _copy_stream(response, total, sink, progress)


def _open_file(uri: str) -> BinaryIO:
    path = Path(urllib.parse.unquote(urllib.parse.urlsplit(uri).path))
    try:
        return path.open("rb")
    except OSError as error:
        raise FetchError(f"cannot read {path}: {error.strerror}") from None


def _copy_stream(
    source: BinaryIO, total: int | None, sink: BinaryIO, progress: Progress | None
) -> tuple[str, int]:
    digest = hashlib.sha256()
    done = 0
    if total is None:
        with suppress(OSError, AttributeError):
            total = os.fstat(source.fileno()).st_size
    with source:
        try:
            while block := source.read(CHUNK_BYTES):
                digest.update(block)
                sink.write(block)
                done += len(block)
                if progress is not None:
                    progress(done, total)
        except OSError as error:
            raise FetchError(f"the download broke off after {done} bytes: {error}") from None
    if total is not None and done != total:
        raise FetchError(f"the download ended after {done} of {total} bytes")
    return digest.hexdigest(), done


def hub_url(uri: str) -> str:
    """``hf://<org>/<repo>/<file>`` as the Hugging Face download URL of that file on ``main``."""
    org, repo, file = [*uri.removeprefix("hf://").split("/", 2), "", ""][:3]
    if not (org and repo and file):
        raise FetchError(f"{uri}: an hf:// source is hf://<org>/<repo>/<file>")
    return f"https://huggingface.co/{org}/{repo}/resolve/main/{file}"


def main() -> int:
    """The runtime image's init container: fetch ``INFERFLUX_MODEL_URI`` into the model volume.

    One readable line and exit 1 on any failure, so ``kubectl describe pod`` tells what went wrong.
    """
    uri = os.environ.get("INFERFLUX_MODEL_URI", "")
    sha256 = os.environ.get("INFERFLUX_MODEL_SHA256", "")
    target = os.environ.get("INFERFLUX_MODEL_PATH", "")
    if not (uri and sha256 and target):
        print("fetch: INFERFLUX_MODEL_URI, INFERFLUX_MODEL_SHA256 and INFERFLUX_MODEL_PATH are required")
        return 2
    problem = env_signature_problem(sha256, os.environ)
    if problem:  # checked before a byte is downloaded
        print(f"fetch: {problem}")
        return 1
    source = hub_url(uri) if uri.startswith("hf://") else uri
    try:
        fetched = fetch(source, Path(target), sha256)
    except (FetchError, IntegrityError) as error:
        print(f"fetch: {error}")
        return 1
    print(f"fetch: {fetched.path} verified ({fetched.size} bytes{', reused' if fetched.reused else ''})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["FetchError", "Fetched", "IntegrityError", "fetch", "file_name_of", "main"]
