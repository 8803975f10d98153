"""``inferctl models list|get|describe``: InferenceModels in a cluster, with status and conditions.

``list`` and ``get`` show the CRD's printer columns as the API server renders them (the same table
``kubectl get inferencemodels`` prints); ``-o yaml|json`` prints the object; ``describe`` adds every
condition with its reason and message.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

import yaml

from inferflux.cli.errors import CliError
from inferflux.cli.tables import describe, render_table
from inferflux.crds.inferencemodel import PLURAL


def _cluster_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", help="namespace (default: the kubeconfig context's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context")


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``models list``, ``models get`` and ``models describe``."""
    parser = commands.add_parser("models", help="InferenceModels in a cluster: list, get, describe")
    actions = parser.add_subparsers(metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="all InferenceModels of a namespace, as kubectl get")
    _cluster_flags(listing)
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="every namespace")
    listing.add_argument("-o", "--output", choices=["wide"], help="wide: more columns")
    listing.set_defaults(run=run_list)
    get = actions.add_parser("get", help="one InferenceModel")
    _cluster_flags(get)
    get.add_argument("name")
    get.add_argument("-o", "--output", choices=["wide", "yaml", "json"], help="wide, yaml or json")
    get.set_defaults(run=run_get)
    detail = actions.add_parser("describe", help="one InferenceModel with its conditions")
    _cluster_flags(detail)
    detail.add_argument("name")
    detail.set_defaults(run=run_describe)


def _namespace(args: argparse.Namespace) -> str:
    from inferflux.cli import kube

    return str(args.namespace or kube.default_namespace(args.kubeconfig, args.context))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def run_list(args: argparse.Namespace) -> int:
    """Print the table of InferenceModels."""
    from inferflux.cli import kube  # the Kubernetes client loads only for these commands

    namespace = None if args.all_namespaces else _namespace(args)
    table = kube.get(
        kube.resource_path(PLURAL, namespace), table=True, kubeconfig=args.kubeconfig, context=args.context
    )
    text = render_table(table, _now(), wide=args.output == "wide", namespaces=namespace is None)
    print(text or f"No InferenceModels found in {namespace or 'any'} namespace.")
    return 0


def run_get(args: argparse.Namespace) -> int:
    """Print one InferenceModel as a table row, YAML or JSON."""
    from inferflux.cli import kube  # the Kubernetes client loads only for these commands

    path = kube.resource_path(PLURAL, _namespace(args), args.name)
    if args.output in ("yaml", "json"):
        found = kube.get(path, table=False, kubeconfig=args.kubeconfig, context=args.context)
        print(
            json.dumps(found, indent=2) if args.output == "json" else yaml.safe_dump(found, sort_keys=False),
            end="",
        )
        return 0
    table = kube.get(path, table=True, kubeconfig=args.kubeconfig, context=args.context)
    print(render_table(table, _now(), wide=args.output == "wide"))
    return 0


def run_describe(args: argparse.Namespace) -> int:
    """Print the describe view of one InferenceModel."""
    from inferflux.cli import kube  # the Kubernetes client loads only for these commands

    found = kube.get(
        kube.resource_path(PLURAL, _namespace(args), args.name),
        table=False,
        kubeconfig=args.kubeconfig,
        context=args.context,
    )
    if not isinstance(found, dict):
        raise CliError(f"unexpected answer for InferenceModel {args.name}")
    print(describe(found, _now()))
    return 0
