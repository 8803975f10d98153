"""A recorded utterance for the realtime tests: Debian's ``flite`` speaking, as PCM16 at 16 kHz.

flite's ``rms`` voice (a recorded US English male speaker, diphone synthesis) writes WAV at its own
rate; it is resampled to the 16 kHz the voice contract carries (linear interpolation: plenty for a
recogniser). Nothing is committed: each run synthesises its audio. espeak-ng was used before; its
formant voice is far from the speech PocketSphinx's model was trained on (docs/realtime.md has the
word error rates of both).
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


def speak_pcm16(text: str, voice: str = "rms") -> bytes:
    """``text`` spoken by flite, as mono PCM16 little-endian at 16 kHz, from the first sound to the last."""
    binary = shutil.which("flite")
    assert binary, "flite is missing: apt-get install flite"
    wav = subprocess.run(
        [binary, "-voice", voice, "-t", text, "-o", "/dev/stdout"],
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
    pcm = np.clip(resampled, -32768, 32767).astype("<i2").tobytes()
    first, last = voiced_span_ms(pcm)  # flite pads its clip with ~0.2 s of quiet: the words only
    return pcm[first * RATE // 1000 * 2 : (last + 1) * RATE // 1000 * 2]


def voiced_span_ms(pcm: bytes, threshold: int = 100) -> tuple[int, int]:
    """Where the first and the last sample louder than ``threshold`` are, in milliseconds."""
    loud = np.flatnonzero(np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.int32)) > threshold)
    return int(loud[0]) * 1000 // RATE, int(loud[-1]) * 1000 // RATE


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
