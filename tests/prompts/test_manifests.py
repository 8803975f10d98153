"""The built-in manifests: the slices the seeds name, sealed, and renderable."""

from __future__ import annotations

import pytest

from inferflux.prompts.compiled import compile_prompt
from inferflux.prompts.manifest import ManifestError, load_manifest, parse_manifest
from inferflux.prompts.order import slice_order
from inferflux.prompts.sources import EMBEDDED_DIR
from inferflux.prompts.validate import validate_files


def test_built_in_manifests_are_valid_and_sealed() -> None:
    assert validate_files(sorted(EMBEDDED_DIR.glob("*.yaml"))) == []


def test_voice_has_the_seed_slices_in_order() -> None:
    spec = load_manifest(EMBEDDED_DIR / "voice.yaml")
    assert slice_order(spec) == ["voice_core", "short_answers", "guardrails", "barge_in"]


def test_xr_has_the_seed_slices_in_order() -> None:
    spec = load_manifest(EMBEDDED_DIR / "xr.yaml")
    assert slice_order(spec) == ["xr_spatial", "gesture_aware", "avatar_mode"]


def test_voice_renders_its_variables() -> None:
    text = compile_prompt(load_manifest(EMBEDDED_DIR / "voice.yaml")).render(
        {"assistant_name": "Ada", "language": "Spanish", "max_sentences": 3}
    )
    assert text.startswith("You are Ada, a voice assistant speaking with the user in Spanish.")
    assert "at most 3 unless" in text
    assert text.index("interrupt") > text.index("Never reveal")


def test_assistant_needs_no_variables() -> None:
    text = compile_prompt(load_manifest(EMBEDDED_DIR / "assistant.yaml")).render({})
    assert text.startswith("You are a concise, helpful assistant. Answer")


def test_yaml_syntax_error_names_the_line() -> None:
    with pytest.raises(ManifestError, match="line 3: expected"):
        parse_manifest("id: a\nslices: [unclosed\n")


def test_field_errors_are_one_line_each() -> None:
    with pytest.raises(ManifestError) as caught:
        parse_manifest("id: a\nversion: '1'\nslices: {}\n")
    assert len(caught.value.problems) == 2
    assert any(p.startswith("version:") for p in caught.value.problems)
    assert any(p.startswith("slices:") for p in caught.value.problems)


def test_top_level_must_be_a_mapping() -> None:
    with pytest.raises(ManifestError, match="expected a mapping"):
        parse_manifest("- a\n- b\n")
