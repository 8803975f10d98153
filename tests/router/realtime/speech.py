"""A recorded utterance for the realtime tests: Debian's ``espeak-ng`` speaking, as PCM16 at 16 kHz.

espeak-ng writes 22.05 kHz WAV; it is resampled to the 16 kHz the voice contract carries (linear
interpolation: plenty for a recogniser). Nothing is committed: each run synthesises its audio.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import wave

import numpy as np

RATE = 16000
FRAME_MS = 20
FRAME_BYTES = RATE * FRAME_MS // 1000 * 2


def espeak_pcm16(text: str, words_per_minute: int = 140) -> bytes:
    """``text`` spoken by espeak-ng (en-us), as mono PCM16 little-endian at 16 kHz."""
    binary = shutil.which("espeak-ng")
    assert binary, "espeak-ng is missing: apt-get install espeak-ng"
    wav = subprocess.run(
        [binary, "-v", "en-us", "-s", str(words_per_minute), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=60,
    ).stdout
    with wave.open(io.BytesIO(wav)) as reader:
        rate = reader.getframerate()
        samples = np.frombuffer(reader.readframes(reader.getnframes()), dtype="<i2").astype(np.float64)
    duration = len(samples) / rate
    times = np.arange(int(duration * RATE)) / RATE
    resampled = np.interp(times, np.arange(len(samples)) / rate, samples)
    return np.clip(resampled, -32768, 32767).astype("<i2").tobytes()


def silence(milliseconds: int) -> bytes:
    """Digital silence of that length."""
    return b"\0" * (RATE * milliseconds // 1000 * 2)


def frames(pcm: bytes) -> list[bytes]:
    """``pcm`` cut into 20 ms frames (the last one padded with silence)."""
    padded = pcm + b"\0" * (-len(pcm) % FRAME_BYTES)
    return [padded[i : i + FRAME_BYTES] for i in range(0, len(padded), FRAME_BYTES)]


def audio_frame(chunk: bytes, seq: int, codec: str = "pcm16") -> dict[str, object]:
    """The contract's audio frame carrying ``chunk``."""
    return {
        "type": "audio",
        "codec": codec,
        "seq": seq,
        "payload": base64.b64encode(chunk).decode(),
        "ts": seq * FRAME_MS,
    }
