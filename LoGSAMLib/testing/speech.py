"""Synthetic dictations with espeak-ng, for tests, the offline demo and benchmarks.

Real speech (formants, pauses, prosody), generated offline and reproducibly; no recordings
of people are shipped. ``python -m LoGSAMLib.testing.speech "text" -o out.wav --voice de``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ..audio import SAMPLE_RATE, decode_audio_bytes, write_wav
from ..errors import LoGSAMError

# Short names -> espeak-ng voices.
VOICES = {"en": "en-us", "de": "de"}

# Radiology-style dictations used by tests and benchmarks (German as a radiologist in
# Germany would dictate, English as Whisper would translate it).
DICTATIONS = {
    "en": ("MRI of the brain with contrast. There is an enhancing mass in the left frontal lobe "
           "consistent with a glioma. No evidence of meningioma. No hemorrhage."),
    "de": ("MRT des Schädels mit Kontrastmittel. Raumforderung im linken Frontallappen, "
           "vereinbar mit einem Gliom. Kein Hinweis auf ein Meningeom. Keine Blutung."),
}


def speak(text: str, path: str | Path | None = None, voice: str = "en", speed: int = 160,
          pitch: int = 50, amplitude: int = 100, word_gap_ms: int = 0) -> np.ndarray:
    """Synthesise ``text`` with espeak-ng and return 16 kHz mono float32 audio.

    ``voice``: "en", "de" or any espeak-ng voice name. ``speed`` in words per minute.
    With ``path`` the audio is also written there as a 16-bit WAV (atomically).
    """
    if shutil.which("espeak-ng") is None:
        raise LoGSAMError("espeak-ng is not installed; install it with `sudo apt-get install espeak-ng` "
                          "(or run tools/setup_env.sh).")
    command = ["espeak-ng", "--stdout", "-v", VOICES.get(voice, voice), "-s", str(speed), "-p", str(pitch),
               "-a", str(amplitude), "-g", str(max(0, word_gap_ms // 10)), text]
    try:
        result = subprocess.run(command, capture_output=True, check=True)
    except subprocess.CalledProcessError as error:
        raise LoGSAMError(f"espeak-ng failed: {error.stderr.decode(errors='replace').strip()}") from error
    audio = decode_audio_bytes(result.stdout, SAMPLE_RATE)
    if path is not None:
        write_wav(path, audio, SAMPLE_RATE)
    return audio


def speak_for(seconds: float, voice: str = "de", text: str | None = None, **kwargs) -> np.ndarray:
    """At least ``seconds`` of speech: ``text`` (default: the sample dictation) repeated, then trimmed."""
    text = text or DICTATIONS.get(voice, DICTATIONS["en"])
    once = speak(text, voice=voice, **kwargs)
    if once.size == 0:
        raise LoGSAMError("espeak-ng produced no audio.")
    repeats = int(np.ceil(seconds * SAMPLE_RATE / once.size))
    pause = np.zeros(int(0.3 * SAMPLE_RATE), np.float32)
    audio = np.concatenate([np.concatenate([once, pause])] * repeats)
    return audio[: int(round(seconds * SAMPLE_RATE))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Synthesise a dictation with espeak-ng (16 kHz WAV).")
    parser.add_argument("text", nargs="?", help="text to speak (default: a sample dictation)")
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--voice", default="en", help="en, de or an espeak-ng voice")
    parser.add_argument("--speed", type=int, default=160, help="words per minute")
    args = parser.parse_args(argv)
    audio = speak(args.text or DICTATIONS.get(args.voice, DICTATIONS["en"]), args.output, voice=args.voice,
                  speed=args.speed)
    print(f"wrote {args.output} ({audio.size / SAMPLE_RATE:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
