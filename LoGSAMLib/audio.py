"""Dictation audio: capture from a microphone, read/write files, sanity checks.

Everything here works on 16 kHz mono float32 arrays in [-1, 1] (what Whisper expects).
``sounddevice`` (PortAudio) is imported only when a recorder or device list is needed,
because importing it fails without the PortAudio library and costs time.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
import wave
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_path
from .errors import AudioError

SAMPLE_RATE = 16000

# check_signal thresholds (see its docstring).
SILENCE_DBFS = -60.0
CLIP_LEVEL = 0.99
CLIP_FRACTION = 0.01
QUIET_DBFS = -35.0  # loudest 50 ms below this: a usable but very quiet dictation (a warning only)

_FFMPEG_HINT = ("install ffmpeg (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg; "
                "Windows: winget install ffmpeg) or use a .wav file")
_PORTAUDIO_HINT = ("install the PortAudio library (Debian/Ubuntu: sudo apt-get install libportaudio2; "
                   "Fedora: sudo dnf install portaudio; macOS: brew install portaudio)")


# ---------------------------------------------------------------------------- files


def load_audio(path: str | Path, samplerate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode any audio file ffmpeg reads (WAV, FLAC, MP3, OGG, ...) to mono float32.

    Without ffmpeg, plain WAV files are still read (scipy) and resampled.
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"Audio file not found: {path}")
    if shutil.which("ffmpeg") is None:
        if path.suffix.lower() == ".wav":
            return _read_wav_without_ffmpeg(path, samplerate)
        raise AudioError(f"Cannot read {path.name}: ffmpeg is not installed; {_FFMPEG_HINT}.")
    audio = _ffmpeg_decode(["-i", str(path)], None, samplerate, what=str(path))
    if audio.size == 0:
        raise AudioError(f"{path} contains no audio samples; record the dictation again.")
    return audio


def decode_audio_bytes(data: bytes, samplerate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode an in-memory audio file (any format ffmpeg knows) to mono float32."""
    if shutil.which("ffmpeg") is None:
        raise AudioError(f"Cannot decode audio: ffmpeg is not installed; {_FFMPEG_HINT}.")
    return _ffmpeg_decode(["-i", "pipe:0"], data, samplerate, what="audio data")


def _ffmpeg_decode(input_args: list[str], stdin: bytes | None, samplerate: int, what: str) -> np.ndarray:
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
               "-threads", "0", *input_args, "-f", "f32le", "-ac", "1", "-acodec", "pcm_f32le",
               "-ar", str(samplerate), "pipe:1"]
    try:
        result = subprocess.run(command, input=stdin, capture_output=True, check=True)
    except subprocess.CalledProcessError as error:
        detail = error.stderr.decode(errors="replace").strip().splitlines()
        reason = detail[-1] if detail else f"ffmpeg exit code {error.returncode}"
        raise AudioError(f"Cannot decode {what}: {reason}. Is it an audio file (WAV, FLAC, MP3, OGG)?") from error
    return np.frombuffer(result.stdout, dtype="<f4").astype(np.float32)


def _read_wav_without_ffmpeg(path: Path, samplerate: int) -> np.ndarray:
    from scipy.io import wavfile

    try:
        rate, data = wavfile.read(path)
    except (ValueError, OSError) as error:
        raise AudioError(f"Cannot read {path}: {error}; {_FFMPEG_HINT} for other encodings.") from error
    audio = _to_float(np.asarray(data))
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.size == 0:
        raise AudioError(f"{path} contains no audio samples; record the dictation again.")
    return resample(audio, rate, samplerate)


def _to_float(data: np.ndarray) -> np.ndarray:
    if data.dtype.kind == "f":
        return data.astype(np.float32)
    if data.dtype == np.uint8:
        return ((data.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    scale = float(np.iinfo(data.dtype).max) + 1.0
    return (data.astype(np.float64) / scale).astype(np.float32)


def resample(audio: np.ndarray, from_rate: int | float, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling (anti-aliased); a no-op when the rates match."""
    from_rate = int(round(from_rate))
    if from_rate == to_rate:
        return np.asarray(audio, dtype=np.float32)
    from scipy.signal import resample_poly

    g = math.gcd(from_rate, to_rate)
    return resample_poly(audio, to_rate // g, from_rate // g).astype(np.float32)


def write_wav(path: str | Path, audio: np.ndarray, samplerate: int = SAMPLE_RATE) -> Path:
    """Write mono 16-bit PCM WAV atomically (a reader never sees a half-written file)."""
    pcm = np.clip(np.asarray(audio, dtype=np.float32).reshape(-1), -1.0, 1.0)
    data = np.round(pcm * 32767.0).astype("<i2").tobytes()
    path = Path(path)
    with atomic_path(path) as tmp:
        with wave.open(str(tmp), "wb") as handle:
            handle.setnchannels(1)
            handle.setsampwidth(2)
            handle.setframerate(samplerate)
            handle.writeframes(data)
    return path


# ---------------------------------------------------------------------------- signal checks


def dbfs(value: float) -> float:
    """Amplitude (1.0 = full scale) to dBFS; -inf for 0."""
    return 20.0 * math.log10(value) if value > 0 else -math.inf


def frame_rms(audio: np.ndarray, samplerate: int = SAMPLE_RATE, frame_s: float = 0.05) -> np.ndarray:
    """RMS per non-overlapping frame (the last partial frame is dropped unless it is the only one)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    n = max(1, int(samplerate * frame_s))
    count = len(audio) // n
    if count == 0:
        return np.array([float(np.sqrt(np.mean(np.square(audio, dtype=np.float64))))]) if len(audio) else np.zeros(0)
    frames = audio[: count * n].reshape(count, n).astype(np.float64)
    return np.sqrt(np.mean(frames * frames, axis=1))


def check_signal(audio: np.ndarray, samplerate: int = SAMPLE_RATE) -> None:
    """Refuse a recording that cannot be a usable dictation, with advice.

    - empty or shorter than 0.1 s;
    - silent: even the loudest 50 ms stays below -60 dBFS (muted, unplugged or wrong input);
    - clipped: more than 1 % of the samples sit at full scale (input gain too high).
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size < 0.1 * samplerate:
        raise AudioError("No audio was recorded (less than 0.1 s); check the input device and record again.")
    if not np.all(np.isfinite(audio)):
        raise AudioError("The audio device delivered invalid samples (NaN/inf); pick another input with --device.")
    loudest = float(frame_rms(audio, samplerate).max())
    if dbfs(loudest) < SILENCE_DBFS:
        level = "digital silence" if loudest == 0 else f"{dbfs(loudest):.0f} dBFS"
        raise AudioError(
            f"The recording is silent ({level}): check that the microphone is connected and not muted, "
            "raise its input level in the system sound settings, or choose another input "
            "(`logsam record --list-devices`, then `--device N`)."
        )
    clipped = clipped_fraction(audio)
    if clipped > CLIP_FRACTION:
        raise AudioError(
            f"The recording is clipped ({clipped:.1%} of samples at full scale): lower the microphone input "
            "gain in the system sound settings or speak further from the microphone, then record again."
        )


def clipped_fraction(audio: np.ndarray) -> float:
    """The share of samples at full scale (|x| >= 0.99)."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    return float(np.mean(np.abs(audio) >= CLIP_LEVEL)) if audio.size else 0.0


def level_warnings(audio: np.ndarray, samplerate: int = SAMPLE_RATE) -> list[str]:
    """The checks of ``record`` for audio loaded from a file, as warnings for the report and the review:
    clipping (words may be misheard, a "no" lost) and a very low level. Silence is left to the ASR,
    which refuses it."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0 or not np.all(np.isfinite(audio)):
        return []
    out = []
    clipped = clipped_fraction(audio)
    if clipped > CLIP_FRACTION:
        out.append(f"The dictation audio is clipped ({clipped:.1%} of samples at full scale): words may be "
                   "misheard; check the transcript and the findings carefully, or record again with lower gain.")
    loudest = dbfs(float(frame_rms(audio, samplerate).max()))
    if SILENCE_DBFS <= loudest < QUIET_DBFS:
        out.append(f"The dictation audio is very quiet (loudest passage {loudest:.0f} dBFS): words may be "
                   "missed; check the transcript carefully, or record again closer to the microphone.")
    return out


def voice_activity(audio: np.ndarray, samplerate: int = SAMPLE_RATE, frame_s: float = 0.03,
                   margin_db: float = 10.0, min_dbfs: float = -55.0) -> np.ndarray:
    """Per-frame voice activity from energy in the speech band (150-4000 Hz).

    A frame is active when its band energy is ``margin_db`` above the recording's own noise
    floor (10th percentile of frame energies) and above an absolute floor. Speech is
    modulated (syllables, pauses) so its loud frames rise well above the floor; silence,
    steady hum, tones and white noise stay within a few dB of it and are rejected.
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    n = max(16, int(samplerate * frame_s))
    count = len(audio) // n
    if count == 0:
        return np.zeros(0, dtype=bool)
    frames = audio[: count * n].reshape(count, n).astype(np.float64) * np.hanning(n)
    spectrum = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(n, 1.0 / samplerate)
    band = (freqs >= 150.0) & (freqs <= 4000.0)
    # Mean-square amplitude of the band, scaled so a full-scale sine reads about 0 dBFS.
    power = spectrum[:, band].sum(axis=1) * 2.0 / (np.sum(np.hanning(n) ** 2) * n)
    level = 10.0 * np.log10(power + 1e-20)
    floor = np.percentile(level, 10)
    return (level > floor + margin_db) & (level > min_dbfs)


def speech_seconds(audio: np.ndarray, samplerate: int = SAMPLE_RATE) -> float:
    """Seconds of voice activity (see :func:`voice_activity`)."""
    return float(voice_activity(audio, samplerate).sum()) * 0.03


# ---------------------------------------------------------------------------- devices


def _sounddevice() -> Any:
    try:
        import sounddevice
    except OSError as error:  # sounddevice raises OSError when libportaudio is missing
        raise AudioError(f"Cannot record: the PortAudio library is missing; {_PORTAUDIO_HINT}.") from error
    except ImportError as error:
        raise AudioError("Cannot record: the Python package sounddevice is missing; "
                         "install it with `pip install sounddevice`.") from error
    return sounddevice


def list_input_devices() -> list[dict[str, Any]]:
    """Every audio input: index, name, host API, channels, default sample rate, default flag."""
    sd = _sounddevice()
    try:
        devices = sd.query_devices()
        default_in = sd.default.device[0]
        apis = sd.query_hostapis()
    except sd.PortAudioError as error:
        raise AudioError(f"Cannot list audio devices: {error}.") from error
    out = []
    for device in devices:
        if device["max_input_channels"] <= 0:
            continue
        out.append({
            "index": int(device["index"]),
            "name": str(device["name"]),
            "hostapi": str(apis[device["hostapi"]]["name"]),
            "channels": int(device["max_input_channels"]),
            "samplerate": float(device["default_samplerate"]),
            "default": int(device["index"]) == default_in,
        })
    return out


class Recorder:
    """Records from a microphone into memory without blocking the caller.

    ``start()`` opens a PortAudio callback stream; ``stop()`` closes it and returns 16 kHz
    mono float32 audio. ``level`` / ``level_db`` / ``elapsed`` feed a live meter. Recording
    ends by itself after ``max_seconds`` (``wait()`` returns then). Devices that cannot
    deliver 16 kHz mono are opened at their native rate/channels and converted at ``stop()``.
    """

    BLOCK_SECONDS = 0.05

    def __init__(self, device: int | str | None = None, max_seconds: float = 300.0,
                 samplerate: int = SAMPLE_RATE) -> None:
        if max_seconds <= 0:
            raise AudioError("The maximum recording length must be positive.")
        self.device = device
        self.max_seconds = float(max_seconds)
        self.samplerate = int(samplerate)
        self._lock = threading.Lock()
        self._blocks: list[np.ndarray] = []
        self._frames = 0
        self._max_frames = 0
        self._device_rate = float(samplerate)
        self._stream: Any = None
        self._finished = threading.Event()
        self._peak = 0.0
        self._rms = 0.0
        self.overflows = 0

    # -- state for a meter
    @property
    def level(self) -> float:
        """Peak amplitude of the latest block, 0..1 (1 = full scale)."""
        return self._peak

    @property
    def level_db(self) -> float:
        """RMS of the latest block in dBFS (-inf for digital silence)."""
        return dbfs(self._rms)

    @property
    def elapsed(self) -> float:
        """Seconds of audio captured so far."""
        return self._frames / self._device_rate

    @property
    def recording(self) -> bool:
        return self._stream is not None and not self._finished.is_set() and bool(self._stream.active)

    # -- control
    def start(self) -> None:
        if self._stream is not None:
            raise AudioError("The recorder is already running.")
        sd = _sounddevice()
        rate, channels = self._negotiate(sd)
        self._device_rate = rate
        self._channels = channels
        self._max_frames = int(round(self.max_seconds * rate))
        self._blocks, self._frames, self._peak, self._rms, self.overflows = [], 0, 0.0, 0.0, 0
        self._finished.clear()
        self._stop_exception = sd.CallbackStop
        try:
            stream = sd.InputStream(device=self.device, samplerate=rate, channels=channels, dtype="float32",
                                    blocksize=int(rate * self.BLOCK_SECONDS), callback=self._callback,
                                    finished_callback=self._finished.set)
            stream.start()
        except sd.PortAudioError as error:
            raise AudioError(f"Cannot open the audio input {self._device_label(sd)}: {error}. "
                             "Choose another input with --device (see --list-devices).") from error
        self._stream = stream

    def stop(self) -> np.ndarray:
        """Stop (if running) and return everything recorded as 16 kHz mono float32."""
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                stream.stop()
            finally:
                stream.close()
        return self.snapshot()

    def snapshot(self) -> np.ndarray:
        """Everything recorded so far as 16 kHz mono float32, while recording goes on."""
        with self._lock:
            audio = np.concatenate(self._blocks) if self._blocks else np.zeros(0, np.float32)
        return resample(audio, self._device_rate, self.samplerate)

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the recording has ended (maximum length reached, or stopped): True;
        False when ``timeout`` passes first."""
        return self._finished.wait(timeout)

    def __enter__(self) -> Recorder:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._stream is not None:
            self.stop()

    # -- internals
    def _device_label(self, sd: Any) -> str:
        try:
            return repr(sd.query_devices(self.device, "input")["name"])
        except (ValueError, sd.PortAudioError):
            return repr(self.device) if self.device is not None else "(default)"

    def _negotiate(self, sd: Any) -> tuple[float, int]:
        """16 kHz mono if the device takes it, else its default rate and up to 2 channels."""
        try:
            info = sd.query_devices(self.device, "input")
        except (ValueError, sd.PortAudioError) as error:
            which = "no default input device" if self.device is None else f"no input device {self.device!r}"
            raise AudioError(f"Cannot record: {which} ({error}). Connect a microphone, or list the inputs with "
                             "`logsam record --list-devices` and pick one with --device N.") from error
        try:
            sd.check_input_settings(self.device, channels=1, dtype="float32", samplerate=self.samplerate)
            return float(self.samplerate), 1
        except (ValueError, sd.PortAudioError):
            channels = max(1, min(2, int(info["max_input_channels"])))
            rate = float(info["default_samplerate"])
            try:
                sd.check_input_settings(self.device, channels=channels, dtype="float32", samplerate=rate)
            except (ValueError, sd.PortAudioError) as error:
                raise AudioError(f"The audio input {info['name']!r} cannot record mono or stereo float audio "
                                 f"({error}); choose another input with --device.") from error
            return rate, channels

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status.input_overflow:
            self.overflows += 1
        mono = indata[:, 0] if indata.shape[1] == 1 else indata.mean(axis=1)
        take = min(frames, self._max_frames - self._frames)
        block = np.array(mono[:take], dtype=np.float32)
        if take > 0:
            with self._lock:
                self._blocks.append(block)
                self._frames += take
            self._peak = float(np.max(np.abs(block)))
            self._rms = float(np.sqrt(np.mean(np.square(block, dtype=np.float64))))
        if self._frames >= self._max_frames:
            raise self._stop_exception
