"""The quickstart parser (e2e/quickstart_doc.py): markers in, steps out; no cluster, no processes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from quickstart_doc import QuickstartSyntaxError, Step, parse, with_ports

REPO = Path(__file__).resolve().parents[1]
QUICKSTARTS = sorted((REPO / "docs").glob("quickstart-*.md"))

GUIDE = """\
# A guide

<!-- quickstart: background name="serve" until="is up" timeout="900" -->
```sh
make run
```

Some prose, and a listing the reader does not run:

```text
is up
```

<!-- quickstart: run -->
```bash
curl -s http://127.0.0.1:8000/v1/models
```
<!-- expect: smollm2 -->
<!-- expect: "object":"list" -->

<!-- quickstart: not-run reason="no kubelet here" -->
```sh
kubectl port-forward svc/x 8000:8000 &
```

```python
print("python blocks are not commands")
```

<!-- quickstart: interrupt target="serve" -->
<!-- expect: stopped -->
"""


def test_the_steps_of_a_guide_in_order_with_their_attributes_and_expectations() -> None:
    serve, ask, skipped, stop = parse(GUIDE, "guide.md")
    assert serve == Step("background", "make run\n", 3, name="serve", until="is up", timeout=900.0)
    assert (ask.kind, ask.code, ask.line) == ("run", "curl -s http://127.0.0.1:8000/v1/models\n", 14)
    assert ask.expects == ("smollm2", '"object":"list"')
    assert ask.timeout == 300.0
    assert (skipped.kind, skipped.reason) == ("not-run", "no kubelet here")
    assert (stop.kind, stop.target, stop.code, stop.expects) == ("interrupt", "serve", "", ("stopped",))
    assert stop.label() == "line 30: Ctrl-C to serve"
    assert serve.label() == "serve: make run"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("```sh\nls\n```\n", "guide.md:1: unmarked ```sh block"),
        ("```console\n$ ls\n```\n", "guide.md:1: unmarked ```console block"),
        ("<!-- quickstart: run -->\n", "guide.md:1: marker without its ```sh block"),
        ("<!-- quickstart: run -->\nprose\n```sh\nls\n```\n", "guide.md:1: marker not followed by"),
        ("<!-- quickstart: run -->\n```python\nx\n```\n", "a marked block must be ```sh, not ```python"),
        ("<!-- quickstart: run -->\n```sh\nls\n", "guide.md:2: code block never closed"),
        ("<!-- expect: x -->\n", "guide.md:1: expect: with no step before it"),
        ("<!-- quickstart: run -->\n<!-- expect: x -->\n```sh\nls\n```\n", "expect: with no step"),
        ("<!-- quickstart: run -->\n```sh\nls\n```\n<!-- expect: -->\n", "guide.md:5: empty expect:"),
        ("<!-- quickstart: walk -->\n", "guide.md:1: unknown step kind 'walk'"),
        ('<!-- quickstart: background name="a" -->\n', "a background step needs until"),
        ("<!-- quickstart: not-run -->\n", "a not-run step needs reason"),
        ('<!-- quickstart: run colour="red" -->\n', "unknown attribute colour"),
        ("<!-- quickstart: run name=a -->\n", 'attributes must be key="value"'),
        ('<!-- quickstart: run timeout="soon" -->\n```sh\nls\n```\n', "timeout must be a number"),
        ('<!-- quickstart: interrupt target="nobody" -->\n', "interrupt of unknown step 'nobody'"),
    ],
)
def test_malformed_markers_are_refused_with_file_and_line(text: str, problem: str) -> None:
    with pytest.raises(QuickstartSyntaxError, match=re.escape(problem)):
        parse(text, "guide.md")


def test_with_ports_moves_the_documented_ports_and_nothing_else() -> None:
    code = (
        "make run\n"
        "curl http://127.0.0.1:8000/v1/models http://localhost:8001/admin/v1/policy\n"
        'InferFlux("http://127.0.0.1:8000")  # not 127.0.0.1:80001 nor 10.0.0.1:8000 nor :18000\n'
        "make runner\n"
        "  make run  # indented, with a comment\n"
    )
    assert with_ports(code, {8000: 40123, 8001: 40124}) == (
        "make run 'UP_ARGS=--port 40123 --admin-port 40124'\n"
        "curl http://127.0.0.1:40123/v1/models http://localhost:40124/admin/v1/policy\n"
        'InferFlux("http://127.0.0.1:40123")  # not 127.0.0.1:80001 nor 10.0.0.1:8000 nor :18000\n'
        "make runner\n"
        "  make run 'UP_ARGS=--port 40123 --admin-port 40124'  # indented, with a comment\n"
    )
    assert with_ports(code, {}) == code


def test_the_quickstarts_exist() -> None:
    assert [p.name for p in QUICKSTARTS] == [
        "quickstart-cluster.md",
        "quickstart-local.md",
        "quickstart-sdk.md",
    ]


@pytest.mark.parametrize("path", QUICKSTARTS, ids=lambda p: p.name)
def test_every_quickstart_parses_checks_outputs_and_stops_what_it_starts(path: Path) -> None:
    steps = parse(path.read_text(), path.name)
    ran = [s for s in steps if s.kind == "run"]
    assert ran, "a quickstart with no step that runs"
    assert all(s.expects for s in ran), "a step whose output nobody checks"
    started = {s.name for s in steps if s.kind == "background"}
    stopped = {s.target for s in steps if s.kind == "interrupt"}
    assert started == stopped, "every background step is stopped by an interrupt"
    assert all(s.expects for s in steps if s.kind == "interrupt")
