"""Kubernetes resource quantities ("512Mi", "8G", "1.5", 1073741824) and their byte values."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

_SUFFIXES: dict[str, Decimal] = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}

QUANTITY_PATTERN = r"^[+]?[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$"
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)


def parse_quantity(value: str | int) -> Decimal:
    """The numeric value of a quantity, e.g. ``"8Gi"`` -> 8589934592.

    Raises ValueError with the offending text, so the caller can surface it as a condition.
    """
    text = str(value).strip()
    match = _QUANTITY_RE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a Kubernetes quantity (e.g. 512Mi, 8Gi, 2)")
    suffix = match.group(2) or ""
    return Decimal(text[: len(text) - len(suffix)]) * _SUFFIXES[suffix]


def quantity_bytes(value: str | int) -> int:
    """A memory quantity in whole bytes."""
    return int(parse_quantity(value))


def _normalise(value: Any) -> Any:
    """Accept ints and quantity strings; reject anything else with a readable message."""
    if isinstance(value, bool):
        raise ValueError("a quantity must be a number or a string like 8Gi")
    if isinstance(value, int | str):
        parse_quantity(value)
    return value


Quantity = Annotated[
    int | str,
    BeforeValidator(_normalise),
    WithJsonSchema(
        {
            # Structural schemas allow only types inside int-or-string's anyOf; the pattern sits on
            # the node, where JSON Schema applies it to strings only.
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
        }
    ),
    Field(description="A Kubernetes quantity, e.g. 512Mi or 8Gi."),
]
