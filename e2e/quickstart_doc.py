"""The runnable steps of a quickstart, read from its Markdown (docs/quickstart-*.md).

A quickstart marks each shell block with an HTML comment just above it, which a rendered page does
not show, so the reader sees an ordinary guide and the test runs exactly the text the reader copies:

``<!-- quickstart: run -->``
    the next ```sh block runs to completion and must exit 0;
``<!-- quickstart: background name="make-run" until="InferFlux is up" -->``
    the next ```sh block serves forever: it is started in the background, and the run goes on once
    a line of its output contains ``until``; it is stopped at the end;
``<!-- quickstart: interrupt target="make-run" -->``
    no block: the reader presses Ctrl-C where ``target`` runs (the test sends it SIGINT and waits
    for it to exit);
``<!-- quickstart: not-run reason="..." -->``
    the next ```sh block cannot run on the test machine; the test lists it with the reason.

``<!-- expect: TEXT -->`` after a step: the output of that step (for ``interrupt``, the output of
its target) must contain TEXT. Optional attributes: ``name`` (so that a test can act after a step,
openly, in code) and ``timeout`` in seconds. Every ```sh, ```bash or ```console block must be
marked: an unmarked command would be a command no test runs.

The module is pure (text in, steps out) and also holds the one rewrite a test may apply to a step:
the documented ports, replaced by free ones (:func:`with_ports`).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

KINDS = ("run", "background", "interrupt", "not-run")
SHELL_LANGUAGES = ("sh", "bash", "console", "shell")
DEFAULT_TIMEOUT = 300.0

_MARKER = re.compile(r"^<!--\s*quickstart:\s*(?P<body>.*?)\s*-->\s*$")
_EXPECT = re.compile(r"^<!--\s*expect:\s*(?P<text>.*?)\s*-->\s*$")
_FENCE = re.compile(r"^(?P<fence>```+|~~~+)\s*(?P<lang>[\w-]*)")
_ATTRIBUTE = re.compile(r'(?P<key>[a-z]+)="(?P<value>[^"]*)"')
_REQUIRED = {"background": ("name", "until"), "interrupt": ("target",), "not-run": ("reason",)}
_ALLOWED = {"name", "until", "target", "reason", "timeout"}


class QuickstartSyntaxError(ValueError):
    """The Markdown's markers are malformed; the message names the file and line."""


@dataclass(frozen=True)
class Step:
    """One marked step, in document order."""

    kind: str
    code: str
    line: int
    name: str = ""
    until: str = ""
    target: str = ""
    reason: str = ""
    timeout: float = DEFAULT_TIMEOUT
    expects: tuple[str, ...] = field(default=())

    def label(self) -> str:
        """How the step is named in a report: its name, or its line and first command line."""
        first = self.code.strip().splitlines()[0] if self.code.strip() else f"Ctrl-C to {self.target}"
        return f"{self.name or 'line ' + str(self.line)}: {first}"


def _attributes(body: str, where: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = body.partition(" ")
    if kind not in KINDS:
        raise QuickstartSyntaxError(f"{where}: unknown step kind {kind!r} (one of {', '.join(KINDS)})")
    found = {m["key"]: m["value"] for m in _ATTRIBUTE.finditer(rest)}
    if _ATTRIBUTE.sub("", rest).strip():
        raise QuickstartSyntaxError(f'{where}: attributes must be key="value", got {rest.strip()!r}')
    unknown = sorted(set(found) - _ALLOWED)
    if unknown:
        raise QuickstartSyntaxError(f"{where}: unknown attribute {', '.join(unknown)}")
    missing = [key for key in _REQUIRED.get(kind, ()) if not found.get(key)]
    if missing:
        raise QuickstartSyntaxError(f"{where}: a {kind} step needs {', '.join(missing)}")
    return kind, found


def _step(kind: str, attributes: dict[str, str], code: str, line: int, where: str) -> Step:
    try:
        timeout = float(attributes.get("timeout", DEFAULT_TIMEOUT))
    except ValueError:
        raise QuickstartSyntaxError(f"{where}: timeout must be a number of seconds") from None
    return Step(
        kind=kind,
        code=code,
        line=line,
        name=attributes.get("name", ""),
        until=attributes.get("until", ""),
        target=attributes.get("target", ""),
        reason=attributes.get("reason", ""),
        timeout=timeout,
    )


def parse(text: str, source: str = "<markdown>") -> list[Step]:
    """The steps of one quickstart, or :class:`QuickstartSyntaxError` naming the first problem."""
    steps: list[Step] = []
    pending: tuple[str, dict[str, str], int] | None = None  # a marker waiting for its block
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line = lines[number]
        where = f"{source}:{number + 1}"
        stripped = line.strip()
        if marker := _MARKER.match(stripped):
            if pending is not None:
                raise QuickstartSyntaxError(f"{source}:{pending[2]}: marker without its ```sh block")
            kind, attributes = _attributes(marker["body"], where)
            if kind == "interrupt":
                steps.append(_step(kind, attributes, "", number + 1, where))
            else:
                pending = (kind, attributes, number + 1)
        elif expect := _EXPECT.match(stripped):
            if pending is not None or not steps:
                raise QuickstartSyntaxError(f"{where}: expect: with no step before it")
            if not expect["text"]:
                raise QuickstartSyntaxError(f"{where}: empty expect:")
            steps[-1] = replace(steps[-1], expects=(*steps[-1].expects, expect["text"]))
        elif fence := _FENCE.match(stripped):
            end = next((i for i in range(number + 1, len(lines)) if lines[i].strip() == fence["fence"]), None)
            if end is None:
                raise QuickstartSyntaxError(f"{where}: code block never closed")
            code = "\n".join(lines[number + 1 : end]) + "\n"
            if pending is not None:
                if fence["lang"] not in SHELL_LANGUAGES:
                    raise QuickstartSyntaxError(
                        f"{where}: a marked block must be ```sh, not ```{fence['lang']}"
                    )
                kind, attributes, marked_at = pending
                steps.append(_step(kind, attributes, code, marked_at, where))
                pending = None
            elif fence["lang"] in SHELL_LANGUAGES:
                raise QuickstartSyntaxError(
                    f"{where}: unmarked ```{fence['lang']} block: mark it run or not-run"
                )
            number = end
        elif pending is not None and stripped:
            raise QuickstartSyntaxError(f"{source}:{pending[2]}: marker not followed by its ```sh block")
        number += 1
    if pending is not None:
        raise QuickstartSyntaxError(f"{source}:{pending[2]}: marker without its ```sh block")
    names = [s.name for s in steps if s.name]
    for step in steps:
        if step.kind == "interrupt" and step.target not in names:
            raise QuickstartSyntaxError(f"{source}:{step.line}: interrupt of unknown step {step.target!r}")
    return steps


def with_ports(code: str, ports: Mapping[int, int]) -> str:
    """``code`` with each documented port moved to a free one: the test's only rewrite.

    ``127.0.0.1:OLD`` and ``localhost:OLD`` become ``...:NEW``, and a ``make run`` command line
    gets ``UP_ARGS="--port NEW --admin-port NEW"`` for the documented router port 8000 and admin
    port 8001 (the Makefile passes UP_ARGS to ``inferctl up``). Nothing else changes.
    """
    for old, new in ports.items():
        code = re.sub(rf"\b(127\.0\.0\.1|localhost):{old}\b", rf"\g<1>:{new}", code)
    up_args = []
    if 8000 in ports:
        up_args += ["--port", str(ports[8000])]
    if 8001 in ports:
        up_args += ["--admin-port", str(ports[8001])]
    if up_args:
        value = shlex.quote("UP_ARGS=" + " ".join(up_args))
        code = re.sub(r"(?m)^(\s*make run)(?=\s*(#.*)?$)", rf"\g<1> {value}", code)
    return code
