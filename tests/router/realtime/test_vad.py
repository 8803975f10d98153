"""Voice activity on flite's speech: a start when the words begin, an end after the hangover."""

from __future__ import annotations

import importlib

from inferflux.router.realtime.vad import Endpointer

speech = importlib.import_module("inferflux_tests_speech")


def events(endpointer: Endpointer, pcm: bytes) -> list[tuple[str, int]]:
    """Each event and the millisecond of audio it came at."""
    found = []
    for index, chunk in enumerate(speech.frames(pcm)):
        found += [(event, (index + 1) * 20) for event in endpointer.feed(chunk)]
    return found


def test_speech_starts_within_a_few_frames_and_ends_after_the_hangover() -> None:
    words = speech.speak_pcm16("good morning how are you")
    found = events(Endpointer(), speech.silence(500) + words + speech.silence(1000))
    assert [event for event, _ in found] == ["start", "end"]
    start, end = found[0][1], found[1][1]
    assert 500 <= start <= 600  # 40 ms of voiced frames after the words begin, give or take a frame
    spoken_until = 500 + len(words) // 32
    assert spoken_until <= end <= spoken_until + 500 + 80  # the hangover, and a few frames of the detector


def test_silence_is_not_speech() -> None:
    assert events(Endpointer(), speech.silence(2000)) == []


def test_a_client_end_of_utterance_resets_the_detector() -> None:
    endpointer = Endpointer()
    assert [event for event, _ in events(endpointer, speech.speak_pcm16("hello"))] == ["start"]
    endpointer.reset()
    assert not endpointer.speaking
    assert events(endpointer, speech.silence(1000)) == []  # no "end" for an utterance already ended
