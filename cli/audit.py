"""``inferctl audit``: verify an audit folder, and make the signing key pair.

``verify DIR`` checks every chain under DIR (or DIR itself, when it is one chain): hashes, seq
continuity, checkpoint signatures (with ``--public-key``) and the pruning anchor. It exits 0 with a
summary line per chain when all are intact, and 1 with one line naming the first bad place (segment
file, line number, seq) otherwise.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from inferflux.cli.errors import CliError
from inferflux.router.audit import signing
from inferflux.router.audit.segments import chains
from inferflux.router.audit.verify import Report, verify_chain


def _summary(report: Report) -> str:
    signed = "signatures checked" if report.signatures_checked else "signatures NOT checked (no --public-key)"
    checkpoint = (
        f"last checkpoint at seq {report.last_checkpoint_seq}"
        if report.last_checkpoint_seq is not None
        else "no checkpoint"
    )
    return (
        f"intact: chain {report.chain}: {report.records} records, {report.checkpoints} checkpoints, "
        f"{checkpoint}, {report.unsigned_tail} records after it; {signed}"
    )


def verify(args: argparse.Namespace) -> int:
    root = Path(args.directory)
    if not root.is_dir():
        raise CliError(f"{root}: not a folder", exit_code=2)
    checker = None
    if args.public_key:
        try:
            checker = signing.SignatureChecker.from_file(args.public_key)
        except signing.KeyFileError as error:
            raise CliError(str(error), exit_code=2) from None
    found = chains(root)
    if not found:
        raise CliError(f"{root}: no audit chain here (no *.ndjson segments)", exit_code=2)
    for chain_dir in found:
        report = verify_chain(chain_dir, checker)
        if report.problem is not None:
            raise CliError(f"audit chain broken: {report.problem}", exit_code=1)
        print(_summary(report))
    return 0


def keygen(args: argparse.Namespace) -> int:
    private, public = Path(args.private), Path(args.public)
    if private.exists():
        raise CliError(f"{private} exists; not overwriting a signing key", exit_code=2)
    try:
        key_id = signing.generate(private, public)
    except OSError as error:
        raise CliError(f"cannot write the key pair: {error.strerror}", exit_code=2) from None
    print(f"key {key_id}: private {private} (mount into the router), public {public} (for verify)")
    return 0


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``audit verify`` and ``audit keygen``."""
    parser = commands.add_parser("audit", help="verify the audit log; make its signing key")
    actions = parser.add_subparsers(metavar="ACTION", required=True)
    check = actions.add_parser("verify", help="check hashes, seqs, checkpoint signatures and anchors")
    check.add_argument("directory", help="the audit folder (INFERFLUX_AUDIT_DIR) or one chain in it")
    check.add_argument("--public-key", help="PEM public key; without it, signatures are not checked")
    check.set_defaults(run=verify)
    make = actions.add_parser("keygen", help="a new Ed25519 signing key pair (PEM)")
    make.add_argument("--private", default="audit-signing.pem", help="private key file (written 0600)")
    make.add_argument("--public", default="audit-signing.pub", help="public key file")
    make.set_defaults(run=keygen)
