"""Slice templates: plain text with ``{{name}}`` placeholders, compiled once and rendered fast.

There is deliberately no logic in templates (no loops, no filters, no attribute access): a slice is
text plus the values of declared variables, so a manifest can be checked statically and rendered in
microseconds. ``{{`` followed by anything that is not a plain name is left as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class Template:
    """A slice split into literal text and placeholder names, alternating: text, name, text, ..."""

    parts: tuple[str, ...]

    @property
    def names(self) -> frozenset[str]:
        """The variables this template references."""
        return frozenset(self.parts[1::2])

    def render(self, values: dict[str, str]) -> str:
        """The text with each placeholder replaced by its value (every name must be in ``values``)."""
        if len(self.parts) == 1:
            return self.parts[0]
        return "".join(part if i % 2 == 0 else values[part] for i, part in enumerate(self.parts))


def compile_template(text: str) -> Template:
    """Split ``text`` at its placeholders."""
    return Template(tuple(PLACEHOLDER.split(text)))


def as_text(value: Any) -> str:
    """How a variable's value reads inside a prompt: strings as they are, the rest as JSON-ish text."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)
