"""PocketSphinx with its packaged en-US model transcribes espeak-ng speech, fed as it streams.

PocketSphinx is a small, old engine and espeak-ng a synthetic voice: on a fresh decoder it gets
the words of a short question partly right ("what is your name" comes back as "what is your new
you"), which is what this test holds it to (docs/realtime.md gives the measured accuracy).
"""

from __future__ import annotations

import importlib

from inferflux.router.realtime.stt import PocketSphinx

speech = importlib.import_module("inferflux_tests_speech")


def test_spoken_words_come_back_as_text() -> None:
    recogniser = PocketSphinx()
    recogniser.start()
    spoken = speech.silence(300) + speech.espeak_pcm16("what is your name") + speech.silence(600)
    for chunk in speech.frames(spoken):
        recogniser.feed(chunk)
    assert recogniser.finish().startswith("what is your ")


def test_an_utterance_of_silence_is_empty_and_finish_without_start_too() -> None:
    recogniser = PocketSphinx()
    assert recogniser.finish() == ""
    recogniser.start()
    recogniser.feed(speech.silence(500))
    assert recogniser.finish() == ""
