"""Kubernetes quantities parse as the API server parses them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from inferflux.crds.quantity import parse_quantity, quantity_bytes


@pytest.mark.parametrize(
    ("text", "value"),
    [("8Gi", 8 * 2**30), ("512Mi", 512 * 2**20), ("1G", 10**9), ("2", 2), (1024, 1024), ("1.5Gi", 3 * 2**29)],
)
def test_quantity_bytes(text: str | int, value: int) -> None:
    assert quantity_bytes(text) == value


def test_millis() -> None:
    assert parse_quantity("500m") == Decimal("0.5")


@pytest.mark.parametrize("text", ["8GB", "-1Gi", "lots", "", "1e3x"])
def test_bad_quantity_names_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Kubernetes quantity"):
        parse_quantity(text)
