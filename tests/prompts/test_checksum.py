"""The checksum is sha256 of the RFC 8785 canonical JSON, worked out by hand on three cases."""

from __future__ import annotations

import hashlib
import json

import pytest

from inferflux.crds.prompt import PromptSpec
from inferflux.prompts.checksum import ChecksumError, canonical_form, compute_checksum, sealed, verify


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def test_plain_manifest_matches_hand_written_canonical_form() -> None:
    spec = PromptSpec.model_validate({"version": "1.0.0", "id": "a", "slices": {"system": "Hi"}})
    # Keys sorted, no whitespace, defaults present as the API server would store them.
    expected = (
        '{"description":"","id":"a","metadata":{},"models":[],"slices":{"system":"Hi"},'
        '"variables":{"properties":{},"type":"object"},"variants":[],"version":"1.0.0"}'
    )
    assert canonical_form(spec) == expected.encode()
    assert compute_checksum(spec) == sha(expected)


def test_unicode_keys_sort_by_utf16_and_strings_escape_minimally() -> None:
    spec = PromptSpec.model_validate(
        {
            "id": "u",
            "version": "1.0.0",
            "description": 'Café ☕ "q" \\ \n\t\x1f',
            "slices": {"system": "x"},
            # UTF-16 order puts U+1F600 (D83D DE00) before U+FF5A; code-point order would not.
            "metadata": {"\uff5a": "fullwidth", "😀": "emoji", "é": "e-acute", "a": "ascii"},
        }
    )
    expected = (
        '{"description":"Café ☕ \\"q\\" \\\\ \\n\\t\\u001f","id":"u",'
        '"metadata":{"a":"ascii","é":"e-acute","😀":"emoji","\uff5a":"fullwidth"},'
        '"models":[],"slices":{"system":"x"},"variables":{"properties":{},"type":"object"},'
        '"variants":[],"version":"1.0.0"}'
    )
    assert canonical_form(spec) == expected.encode("utf-8")
    assert compute_checksum(spec) == sha(expected)


def test_numbers_use_ecmascript_formatting() -> None:
    variables = {
        "type": "object",
        "properties": {
            "t": {"type": "number", "minimum": -0.0, "maximum": 1e21, "multipleOf": 0.1, "default": 1.5e-7},
            "n": {"type": "integer", "maximum": 100.0},
        },
    }
    spec = PromptSpec.model_validate(
        {"id": "n", "version": "2.0.0", "slices": {"s": "x"}, "variables": variables}
    )
    expected = (
        '{"description":"","id":"n","metadata":{},"models":[],"slices":{"s":"x"},'
        '"variables":{"properties":{"n":{"maximum":100,"type":"integer"},'
        '"t":{"default":1.5e-7,"maximum":1e+21,"minimum":0,"multipleOf":0.1,"type":"number"}},'
        '"type":"object"},"variants":[],"version":"2.0.0"}'
    )
    assert canonical_form(spec) == expected.encode()
    assert compute_checksum(spec) == sha(expected)


def test_checksum_ignores_the_checksum_field_and_key_order() -> None:
    spec = sealed(PromptSpec.model_validate({"id": "a", "version": "1.0.0", "slices": {"b": "2", "a": "1"}}))
    reordered = json.loads(json.dumps(spec.to_wire(), sort_keys=True))
    again = PromptSpec.model_validate(reordered)
    assert compute_checksum(again) == spec.checksum
    verify(again)


def test_verify_rejects_edited_content() -> None:
    spec = sealed(PromptSpec.model_validate({"id": "a", "version": "1.0.0", "slices": {"s": "safe"}}))
    tampered = spec.model_copy(update={"slices": {"s": "unsafe"}})
    with pytest.raises(ChecksumError, match="checksum mismatch"):
        verify(tampered)


def test_verify_rejects_an_unsealed_spec() -> None:
    with pytest.raises(ChecksumError, match="not sealed"):
        verify(PromptSpec.model_validate({"id": "a", "version": "1.0.0", "slices": {"s": "x"}}))


def test_whitespace_in_content_changes_the_checksum() -> None:
    one = PromptSpec.model_validate({"id": "a", "version": "1.0.0", "slices": {"s": "x"}})
    two = PromptSpec.model_validate({"id": "a", "version": "1.0.0", "slices": {"s": "x "}})
    assert compute_checksum(one) != compute_checksum(two)
