"""A prompt made ready to render: templates split, variables schema compiled, variants resolved.

Compiling costs a fraction of a millisecond and happens once per (id, version) when the resolver
caches it; rendering then only validates the variables and joins strings.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from inferflux.crds.prompt import PromptSpec
from inferflux.prompts.order import slice_order
from inferflux.prompts.template import Template, as_text, compile_template
from inferflux.prompts.variants import choose_variant

SLICE_SEPARATOR = "\n\n"
MEMO_SIZE = 1024


class VariablesError(ValueError):
    """The variables given for a prompt do not satisfy its variables schema."""

    def __init__(self, prompt_id: str, problems: list[str]) -> None:
        super().__init__(f"variables of prompt {prompt_id!r}: " + "; ".join(problems))
        self.problems = problems


def variables_validator(spec: PromptSpec) -> Draft202012Validator:
    """The compiled validator of ``spec.variables``; raises SchemaError when it is no JSON Schema."""
    Draft202012Validator.check_schema(spec.variables)
    return Draft202012Validator(spec.variables)


def variable_problems(validator: Draft202012Validator, variables: dict[str, Any]) -> list[str]:
    """One line per violation (path: message), in a stable order. Values are not echoed."""
    lines = []
    for error in sorted(validator.iter_errors(variables), key=lambda e: list(map(str, e.path))):
        where = ".".join(str(p) for p in error.path) or "variables"
        lines.append(f"{where}: fails {error.validator!r} of the variables schema")
    return lines


@dataclass(frozen=True)
class CompiledPrompt:
    """One version of one prompt, ready to render."""

    spec: PromptSpec
    order: tuple[str, ...]
    base: dict[str, Template]
    variants: dict[str, dict[str, Template]]
    validator: Draft202012Validator
    names: frozenset[str] = field(default=frozenset())
    # Validation is a pure function of the variables, and requests repeat them (a product name, a
    # language): remember recent verdicts for hashable variables instead of re-walking the schema.
    _valid: OrderedDict[tuple[Any, ...], tuple[str, ...]] = field(default_factory=OrderedDict, compare=False)

    @property
    def key(self) -> str:
        """``id@version``."""
        return f"{self.spec.id}@{self.spec.version}"

    def variant_for(self, request_id: str) -> str | None:
        """The variant name serving ``request_id`` (None: base slices)."""
        chosen = choose_variant(self.spec.id, self.spec.variants, request_id)
        return chosen.name if chosen else None

    def problems(self, variables: dict[str, Any]) -> tuple[str, ...]:
        """The schema violations of ``variables`` (memoised when they are hashable)."""
        try:
            key = tuple(sorted((k, type(v).__name__, v) for k, v in variables.items()))
            hash(key)
        except TypeError:
            return tuple(variable_problems(self.validator, variables))
        found = self._valid.get(key)
        if found is None:
            found = tuple(variable_problems(self.validator, variables))
            self._valid[key] = found
            if len(self._valid) > MEMO_SIZE:
                self._valid.popitem(last=False)
        return found

    def render(self, variables: dict[str, Any], variant: str | None = None, strict: bool = True) -> str:
        """The prompt text for these variables; raises VariablesError when they break the schema.

        ``strict=False`` skips the schema (used for the embedded fallback, which may be another
        prompt than the one the variables were meant for); missing variables render empty.
        """
        problems = self.problems(variables) if strict else ()
        if problems:
            raise VariablesError(self.spec.id, list(problems))
        values = {name: as_text(variables.get(name)) for name in self.names}
        replaced = self.variants.get(variant, {}) if variant else {}
        texts = (replaced.get(name, self.base[name]).render(values) for name in self.order)
        return SLICE_SEPARATOR.join(text for text in texts if text)


def compile_prompt(spec: PromptSpec) -> CompiledPrompt:
    """Compile ``spec``; raises SchemaError when its variables schema is not a valid JSON Schema."""
    base = {name: compile_template(text) for name, text in spec.slices.items()}
    variants = {v.name: {n: compile_template(t) for n, t in v.slices.items()} for v in spec.variants}
    templates = [*base.values(), *(t for replaced in variants.values() for t in replaced.values())]
    names = frozenset(name for template in templates for name in template.names)
    return CompiledPrompt(
        spec=spec,
        order=tuple(slice_order(spec)),
        base=base,
        variants=variants,
        validator=variables_validator(spec),
        names=names,
    )


__all__ = ["CompiledPrompt", "SchemaError", "VariablesError", "compile_prompt"]
