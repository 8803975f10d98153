"""Prices per model, sealed with a checksum: what one request costs, in integer micro-units.

A pricing file (``pricing.yaml``) says, per model, the price of a million input and a million
output tokens in one currency, and the output tokens to reserve when a request sets no
``max_tokens``::

    version: "2026-12-01"
    currency: USD
    models:
      smollm2-135m: {inputPerMillion: "0.02", outputPerMillion: "0.04", maxOutputTokens: 2048}
      gpt-4o-mini: {inputPerMillion: 0.15, outputPerMillion: 0.6, maxOutputTokens: 16384}
    default: {inputPerMillion: 1, outputPerMillion: 4, maxOutputTokens: 4096}
    checksum: "sha256:..."

Keys are served model names or provider model names; ``default`` (optional) prices every model not
listed. A model with no entry and no default costs 0: it is never refused for budget, and its
usage still counts against tokens-per-minute limits.

``checksum`` is ``sha256:<hex>`` of the RFC 8785 (JCS) canonical JSON of the document without its
``checksum`` key (prompts/checksum.py, the same sealing as prompt manifests): ``inferctl pricing
checksum FILE --write`` computes and writes it. A price written as a number is hashed as that
number, one written as a string as that string, so rewriting ``0.15`` as ``"0.15"`` changes it.

Money is counted in integer micro-units of the currency (1e-6): a price per million tokens is
exactly the price of one token in micro-units, so a cost is ``input_tokens * inputPerMillion +
output_tokens * outputPerMillion`` computed with `decimal.Decimal` (prices written as numbers are
read through their shortest decimal form, so ``0.1`` is exactly one tenth) and rounded up to a
whole micro-unit.
"""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inferflux.prompts.checksum import jcs_checksum

CHECKSUM_PATTERN = r"^sha256:[0-9a-f]{64}$"


class PricingError(ValueError):
    """A pricing file that cannot be used; ``str()`` is one readable line."""


class ModelPrice(BaseModel):
    """The price of one model's tokens, per million, in the file's currency."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    input_per_million: Decimal = Field(alias="inputPerMillion", ge=0, allow_inf_nan=False)
    output_per_million: Decimal = Field(alias="outputPerMillion", ge=0, allow_inf_nan=False)
    max_output_tokens: int = Field(alias="maxOutputTokens", gt=0, strict=True)

    def cost(self, input_tokens: int, output_tokens: int) -> int:
        """Micro-units for this usage, rounded up (exact: Decimal arithmetic)."""
        exact = input_tokens * self.input_per_million + output_tokens * self.output_per_million
        return math.ceil(exact)

    def max_cost(self, prompt_tokens: int, max_tokens: int | None) -> int:
        """The most a request can cost: its prompt plus ``max_tokens`` (or ``maxOutputTokens`` when
        the request sets none) of output."""
        return self.cost(prompt_tokens, self.max_output_tokens if max_tokens is None else max_tokens)


class Pricing(BaseModel):
    """A pricing document (``pricing.yaml``); `load_pricing` is how a router gets a verified one."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    version: str = Field(min_length=1)
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. USD")
    checksum: str | None = Field(default=None, pattern=CHECKSUM_PATTERN)
    models: dict[str, ModelPrice] = Field(default_factory=dict)
    default: ModelPrice | None = None

    def price_of(self, model: str) -> ModelPrice | None:
        """The model's entry, else the default, else None (the model is free)."""
        return self.models.get(model, self.default)

    def cost(self, model: str, input_tokens: int, output_tokens: int) -> int:
        """What this usage of ``model`` costs, in micro-units, rounded up; 0 for an unpriced model."""
        price = self.price_of(model)
        return 0 if price is None else price.cost(input_tokens, output_tokens)

    def max_cost(self, model: str, prompt_tokens: int, max_tokens: int | None) -> int:
        """The most a request can cost: its prompt plus ``max_tokens`` (or the model's
        ``maxOutputTokens`` when the request sets none) of output. This is what admission reserves."""
        price = self.price_of(model)
        return 0 if price is None else price.max_cost(prompt_tokens, max_tokens)


def _one_line(error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "document"
        problems.append(f"{where}: {item['msg']}")
    return "; ".join(problems)


def parse_pricing(document: Any, source: str = "pricing") -> tuple[Pricing, str]:
    """Validate a parsed document; the model and the checksum its content has (declared or not).

    Raises `PricingError` (one line, prefixed by ``source``) when it is not a valid pricing document.
    """
    if not isinstance(document, dict):
        raise PricingError(f"{source}: a pricing file is a YAML mapping (version, currency, models, ...)")
    try:
        pricing = Pricing.model_validate(document)
    except ValidationError as error:
        raise PricingError(f"{source}: {_one_line(error)}") from None
    try:
        actual = jcs_checksum(document)
    except (ValueError, TypeError) as error:  # a value JSON cannot hold exactly
        raise PricingError(f"{source}: cannot be canonicalised as JSON: {error}") from None
    return pricing, actual


def read_document(path: Path) -> Any:
    """The YAML document in ``path``; `PricingError` when it cannot be read or parsed."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise PricingError(f"{path}: cannot read: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise PricingError(f"{path}: not valid YAML{where}") from None


def load_pricing(path: Path | str) -> Pricing:
    """The pricing in ``path``, only if valid and sealed with the checksum of its own content."""
    path = Path(path)
    pricing, actual = parse_pricing(read_document(path), str(path))
    if pricing.checksum is None:
        raise PricingError(
            f"{path}: no checksum; expected {actual} (run: inferctl pricing checksum --write {path})"
        )
    if pricing.checksum != actual:
        raise PricingError(
            f"{path}: checksum mismatch: declared {pricing.checksum}, expected {actual} "
            f"(sha256 of the RFC 8785 JSON without 'checksum'; run: inferctl pricing checksum --write {path})"
        )
    return pricing
