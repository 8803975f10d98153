"""``inferctl pull``: download weights with a progress bar, verified by sha256 and Ed25519 signature."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic import ValidationError

from inferflux.cli.errors import CliError
from inferflux.cli.progress import ProgressBar
from inferflux.crds.inferencemodel import SHA256_HEX, ModelSource
from inferflux.operator.local.paths import model_dir
from inferflux.operator.local.resources import ResourceError, load
from inferflux.runtime.fetch import FetchError, fetch, file_name_of
from inferflux.runtime.integrity import IntegrityError, load_public_key


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``pull``."""
    parser = commands.add_parser(
        "pull",
        help="download a model, verified by sha256 and an Ed25519 signature",
        description="Download weights into a local folder (or a mounted PVC). The file appears only "
        "once its sha256 (and signature, when given) checks out.",
    )
    parser.add_argument("source", nargs="?", help="http(s):// or file:// URI of the weights")
    parser.add_argument("--sha256", help="expected lower-case hex sha256 of the file")
    parser.add_argument("--signature", help="base64 Ed25519 signature over `sha256:<digest>`")
    parser.add_argument(
        "--public-key", type=Path, help="file with the Ed25519 public key (raw, base64 or PEM)"
    )
    parser.add_argument(
        "-f",
        "--from-model",
        type=Path,
        help="take source, sha256 and signature from this InferenceModel YAML",
    )
    parser.add_argument("--dest", type=Path, help="folder to write into (default: the local model cache)")
    parser.add_argument("-o", "--output", type=Path, help="exact file to write (overrides --dest)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    """Pull, verify, and report where the file is."""
    source = _source(args)
    if args.signature and args.public_key is None:
        raise CliError("--signature needs --public-key to check it against")
    key = None
    if args.public_key is not None:
        try:
            key = load_public_key(args.public_key.read_bytes())
        except OSError as error:
            raise CliError(f"cannot read the public key {args.public_key}: {error.strerror}") from None
    target = args.output or (args.dest or model_dir()) / file_name_of(source.uri)
    signature = source.signature.value if source.signature else args.signature
    bar = ProgressBar(sys.stderr, target.name)
    try:
        fetched = fetch(source.uri, target, source.sha256, signature=signature, public_key=key, progress=bar)
    except (FetchError, IntegrityError) as error:
        raise CliError(str(error)) from None
    finally:
        bar.close()
    checks = "sha256 ok" + (", signature ok" if signature else ", unsigned")
    verb = "already present" if fetched.reused else "pulled"
    print(f"{verb}: {fetched.path} ({fetched.size / 1e6:.1f} MB, {checks})")
    return 0


def _source(args: argparse.Namespace) -> ModelSource:
    """The source to pull, from the command line or from an InferenceModel's ``spec.source``."""
    if args.from_model is not None:
        try:
            models = load([args.from_model]).models
        except ResourceError as error:
            raise CliError(str(error)) from None
        if len(models) != 1 or models[0].spec.source is None:
            raise CliError(f"{args.from_model} must hold exactly one InferenceModel with spec.source")
        source = models[0].spec.source
        if args.signature is None and source.signature is None and args.public_key is not None:
            raise CliError(f"{args.from_model} has no spec.source.signature to check")
        return source
    if not args.source or not args.sha256:
        raise CliError("pull needs a SOURCE and --sha256 (or -f MODEL.yaml)", exit_code=2)
    try:
        return ModelSource(uri=args.source, sha256=args.sha256)
    except ValidationError:
        raise CliError(
            f"give a source URI (http(s):// or file://) and a --sha256 of 64 hex digits ({SHA256_HEX})",
            exit_code=2,
        ) from None
