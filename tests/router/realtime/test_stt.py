"""PocketSphinx with its packaged en-US model transcribes flite's speech, fed as it streams.

docs/realtime.md gives the measured word error rate: about 4 % on flite's ``rms`` voice over the
twelve short requests below (espeak-ng's voice, used before, got 68 %).
"""

from __future__ import annotations

import importlib

from inferflux.router.realtime.stt import PocketSphinx

speech = importlib.import_module("inferflux_tests_speech")


# Twelve short requests, as a voice assistant hears them.
REQUESTS = [
    "what is your name",
    "what is the capital of france",
    "tell me a joke about cats",
    "how is the weather today",
    "please book a table for two at seven",
    "turn off the lights in the kitchen",
    "what time does the train leave",
    "send a message to my mother",
    "how many people live in london",
    "play some music by the beatles",
    "what is the square root of sixteen",
    "remind me to call the doctor tomorrow",
]


def transcribe(recogniser: PocketSphinx, words: str) -> str:
    recogniser.start()
    for chunk in speech.frames(speech.silence(300) + speech.speak_pcm16(words) + speech.silence(600)):
        recogniser.feed(chunk)
    return recogniser.finish()


def word_errors(reference: str, hypothesis: str) -> int:
    """Word-level edit distance (substitutions, insertions and deletions)."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, word in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, heard in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (word != heard))
    return row[-1]


def test_a_question_comes_back_word_for_word() -> None:
    assert transcribe(PocketSphinx(), "what is your name") == "what is your name"


def test_the_word_error_rate_on_short_requests_stays_low() -> None:
    recogniser = PocketSphinx()
    errors = sum(word_errors(words, transcribe(recogniser, words)) for words in REQUESTS)
    total = sum(len(words.split()) for words in REQUESTS)
    assert errors / total <= 0.10, f"{errors} of {total} words wrong"


def test_an_utterance_of_silence_is_empty_and_finish_without_start_too() -> None:
    recogniser = PocketSphinx()
    assert recogniser.finish() == ""
    recogniser.start()
    recogniser.feed(speech.silence(500))
    assert recogniser.finish() == ""
