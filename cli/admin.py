"""``inferctl admin``: tenants, API keys and tenant secrets through the router's admin API.

Talks to ``--url`` (default http://127.0.0.1:8001, the admin listener) with ``--token`` or
``$INFERFLUX_ADMIN_TOKEN``. ``keys create`` and ``keys rotate`` print the new key once: it is stored
nowhere and cannot be shown again.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from inferflux.cli.errors import CliError

DEFAULT_URL = "http://127.0.0.1:8001"
TOKEN_ENV = "INFERFLUX_ADMIN_TOKEN"  # noqa: S105 - the variable's name


class AdminClient:
    """JSON over HTTP to the admin API; any failure becomes a one-line `CliError`."""

    def __init__(self, url: str, token: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise CliError(f"--url must be an http:// or https:// address, not {url!r}")
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """The decoded JSON reply of ``method path``."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked in __init__
            f"{self.url}/admin/v1{path}",
            data=data,
            method=method,
            headers={"authorization": f"Bearer {self.token}", "content-type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - http(s) only
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            raise CliError(f"{method} {path}: {error.code} {_message(error.read())}") from None
        except (urllib.error.URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise CliError(f"cannot reach the admin API at {self.url}: {reason}") from None


def _message(raw: bytes) -> str:
    try:
        return str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return raw.decode(errors="replace")[:200] or "no detail"


def _client(args: argparse.Namespace) -> AdminClient:
    token = args.token or os.environ.get(TOKEN_ENV, "")
    if not token:
        raise CliError(f"no admin credential: pass --token or set {TOKEN_ENV}")
    return AdminClient(args.url, token)


def _print(document: Any, output: str) -> None:
    if output == "json":
        print(json.dumps(document, indent=2))
    else:
        print(yaml.safe_dump(document, sort_keys=False), end="")


def _list(values: str | None) -> list[str] | None:
    return [value.strip() for value in values.split(",") if value.strip()] if values else None


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``admin tenants|keys|secrets ...``."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=DEFAULT_URL, help=f"admin API (default {DEFAULT_URL})")
    common.add_argument("--token", help=f"admin token or admin-scoped API key (default ${TOKEN_ENV})")
    common.add_argument("-o", "--output", choices=["yaml", "json"], default="yaml", help="output format")
    parser = commands.add_parser("admin", help="tenants, API keys and tenant secrets (admin API)")
    groups = parser.add_subparsers(metavar="GROUP", required=True)

    tenants = groups.add_parser("tenants", help="list, get or apply tenants").add_subparsers(
        metavar="ACTION", required=True
    )
    tenants.add_parser("list", parents=[common], help="every tenant").set_defaults(run=tenants_list)
    get = tenants.add_parser("get", parents=[common], help="one tenant")
    get.add_argument("name")
    get.set_defaults(run=tenants_get)
    apply = tenants.add_parser("apply", parents=[common], help="create or replace tenants from YAML/JSON")
    apply.add_argument(
        "-f", "--filename", required=True, help="file of tenants ({name, scopes, ...}); - for stdin"
    )
    apply.set_defaults(run=tenants_apply)
    delete = tenants.add_parser("delete", parents=[common], help="delete a tenant and revoke its keys")
    delete.add_argument("name")
    delete.set_defaults(run=tenants_delete)

    keys = groups.add_parser("keys", help="create, list, revoke or rotate API keys").add_subparsers(
        metavar="ACTION", required=True
    )
    create = keys.add_parser("create", parents=[common], help="a new key (printed once)")
    create.add_argument("tenant")
    create.add_argument("--name", default="", help="what the key is for")
    create.add_argument("--scopes", help="comma-separated, narrower than the tenant's")
    create.add_argument("--models", help="comma-separated, narrower than the tenant's")
    create.add_argument("--expires-at", help="RFC 3339 time, e.g. 2030-01-01T00:00:00Z")
    create.set_defaults(run=keys_create)
    listing = keys.add_parser("list", parents=[common], help="a tenant's keys (id, last4, dates)")
    listing.add_argument("tenant")
    listing.set_defaults(run=keys_list)
    revoke = keys.add_parser("revoke", parents=[common], help="revoke a key now")
    revoke.add_argument("key_id")
    revoke.set_defaults(run=keys_revoke)
    rotate = keys.add_parser(
        "rotate", parents=[common], help="a new key; the old one expires after --overlap"
    )
    rotate.add_argument("key_id")
    rotate.add_argument("--overlap", type=int, default=3600, help="seconds the old key keeps working")
    rotate.set_defaults(run=keys_rotate)

    secrets = groups.add_parser("secrets", help="put, list or delete tenant secrets").add_subparsers(
        metavar="ACTION", required=True
    )
    put = secrets.add_parser("put", parents=[common], help="store a secret (value read from stdin)")
    put.add_argument("tenant")
    put.add_argument("name")
    put.add_argument("--from-file", help="read the value from this file instead of stdin")
    put.set_defaults(run=secrets_put)
    names = secrets.add_parser("list", parents=[common], help="a tenant's secret names")
    names.add_argument("tenant")
    names.set_defaults(run=secrets_list)
    remove = secrets.add_parser("delete", parents=[common], help="delete a secret")
    remove.add_argument("tenant")
    remove.add_argument("name")
    remove.set_defaults(run=secrets_delete)


def tenants_list(args: argparse.Namespace) -> int:
    """Print a table of tenants."""
    for tenant in _client(args).call("GET", "/tenants")["data"]:
        scopes = ",".join(tenant["scopes"])
        models = ",".join(tenant["models"])
        state = "suspended" if tenant["suspended"] else "active"
        print(f"{tenant['name']}\t{tenant['source']}\t{state}\t{scopes}\t{models}")
    return 0


def tenants_get(args: argparse.Namespace) -> int:
    """Print one tenant."""
    _print(_client(args).call("GET", f"/tenants/{args.name}"), args.output)
    return 0


def _tenant_documents(path: str) -> list[dict[str, Any]]:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
        loaded = [document for document in yaml.safe_load_all(text) if document is not None]
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise CliError(f"{path} is not YAML: {str(error).splitlines()[0]}") from None
    documents: list[dict[str, Any]] = []
    for item in loaded:
        documents.extend(item if isinstance(item, list) else [item])
    if not documents or not all(isinstance(d, dict) and isinstance(d.get("name"), str) for d in documents):
        raise CliError(f"{path}: expected tenants, each a mapping with a name")
    return documents


def tenants_apply(args: argparse.Namespace) -> int:
    """PUT every tenant of the file."""
    client = _client(args)
    for document in _tenant_documents(args.filename):
        body = {field: value for field, value in document.items() if field not in ("name", "source")}
        client.call("PUT", f"/tenants/{document['name']}", body)
        print(f"tenant/{document['name']} applied")
    return 0


def tenants_delete(args: argparse.Namespace) -> int:
    """Delete one tenant."""
    _client(args).call("DELETE", f"/tenants/{args.name}")
    print(f"tenant/{args.name} deleted")
    return 0


def _show_new_key(created: dict[str, Any]) -> None:
    record = created["record"]
    print(created["key"])
    print(f"key id {record['id']} (tenant {record['tenant']}): shown once, store it now", file=sys.stderr)


def keys_create(args: argparse.Namespace) -> int:
    """Create a key and print it once."""
    body: dict[str, Any] = {"name": args.name}
    if args.scopes:
        body["scopes"] = _list(args.scopes)
    if args.models:
        body["models"] = _list(args.models)
    if args.expires_at:
        body["expiresAt"] = args.expires_at
    _show_new_key(_client(args).call("POST", f"/tenants/{args.tenant}/keys", body))
    return 0


def keys_list(args: argparse.Namespace) -> int:
    """Print a tenant's keys, one per line."""
    for key in _client(args).call("GET", f"/tenants/{args.tenant}/keys")["data"]:
        state = "revoked" if key["revokedAt"] else "active"
        expires = key["expiresAt"] or "never"
        print(f"{key['id']}\t...{key['last4']}\t{state}\texpires {expires}\t{key['name']}")
    return 0


def keys_revoke(args: argparse.Namespace) -> int:
    """Revoke a key."""
    key = _client(args).call("POST", f"/keys/{args.key_id}/revoke")
    print(f"key {key['id']} revoked at {key['revokedAt']}")
    return 0


def keys_rotate(args: argparse.Namespace) -> int:
    """Rotate a key and print the new one once."""
    created = _client(args).call("POST", f"/keys/{args.key_id}/rotate", {"overlapSeconds": args.overlap})
    _show_new_key(created)
    print(f"key {args.key_id} expires at {created['previous']['expiresAt']}", file=sys.stderr)
    return 0


def secrets_put(args: argparse.Namespace) -> int:
    """Store a secret read from stdin or a file (never from the command line, which ps shows)."""
    try:
        value = Path(args.from_file).read_text(encoding="utf-8") if args.from_file else sys.stdin.read()
    except OSError as error:
        raise CliError(f"cannot read {args.from_file}: {error.strerror}") from None
    value = value.rstrip("\n")
    if not value:
        raise CliError("the secret value is empty")
    _client(args).call("PUT", f"/tenants/{args.tenant}/secrets/{args.name}", {"value": value})
    print(f"secret {args.tenant}/{args.name} stored")
    return 0


def secrets_list(args: argparse.Namespace) -> int:
    """Print a tenant's secret names."""
    for secret in _client(args).call("GET", f"/tenants/{args.tenant}/secrets")["data"]:
        print(f"{secret['name']}\t{secret['keyVersion']}\t{secret['updatedAt']}")
    return 0


def secrets_delete(args: argparse.Namespace) -> int:
    """Delete a secret."""
    _client(args).call("DELETE", f"/tenants/{args.tenant}/secrets/{args.name}")
    print(f"secret {args.tenant}/{args.name} deleted")
    return 0
