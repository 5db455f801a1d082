"""Audio capture and files: the recorder against a real PortAudio/ALSA device, file I/O, checks."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from LoGSAMLib import audio as A
from LoGSAMLib.cli import main as cli_main
from LoGSAMLib.errors import AudioError

SR = A.SAMPLE_RATE
ROOT = Path(__file__).resolve().parents[1]
ALSA_CONF = Path("/usr/share/alsa/alsa.conf")


def tone(freq: float = 440.0, seconds: float = 2.0, amplitude: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_frequency(audio: np.ndarray) -> float:
    """Median instantaneous frequency: exact for a tone even across skipped blocks (phase jumps)."""
    from scipy.signal import hilbert

    phase = np.unwrap(np.angle(hilbert(audio.astype(np.float64))))
    return float(np.median(np.diff(phase)) * SR / (2 * np.pi))


@pytest.fixture(scope="module")
def speech() -> np.ndarray:
    from LoGSAMLib.testing.speech import DICTATIONS, speak

    return speak(DICTATIONS["de"], voice="de")


# ---------------------------------------------------------------------------- files


def test_write_wav_then_load_audio_round_trip(tmp_path):
    audio = tone(seconds=1.0)
    path = A.write_wav(tmp_path / "a.wav", audio)
    with wave.open(str(path)) as handle:
        assert (handle.getnchannels(), handle.getsampwidth(), handle.getframerate()) == (1, 2, SR)
    back = A.load_audio(path)
    assert back.dtype == np.float32 and back.shape == audio.shape
    assert np.max(np.abs(back - audio)) < 2.0 / 32768
    assert not list(tmp_path.glob("*.part*"))


@pytest.mark.parametrize("suffix", [".flac", ".mp3", ".ogg"])
def test_load_audio_decodes_compressed_formats_and_resamples(tmp_path, suffix):
    source = A.write_wav(tmp_path / "src.wav", tone(seconds=1.5))
    target = tmp_path / f"a{suffix}"
    # Re-encode at 44.1 kHz stereo so that load_audio must also resample and downmix.
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(source), "-ar", "44100", "-ac", "2",
                    str(target)], check=True)
    audio = A.load_audio(target)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.size / SR - 1.5) < 0.1  # codecs pad a little
    middle = audio[SR // 4: SR]
    assert dominant_frequency(middle) == pytest.approx(440.0, abs=2.0)
    assert np.sqrt(np.mean(middle**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.1)


def test_load_audio_errors_are_actionable(tmp_path, monkeypatch):
    with pytest.raises(AudioError, match="not found"):
        A.load_audio(tmp_path / "missing.wav")
    bogus = tmp_path / "notes.mp3"
    bogus.write_text("this is not audio")
    with pytest.raises(AudioError, match="Cannot decode"):
        A.load_audio(bogus)
    monkeypatch.setattr(A.shutil, "which", lambda name: None)
    with pytest.raises(AudioError, match="ffmpeg is not installed"):
        A.load_audio(bogus)


def test_wav_is_read_without_ffmpeg(tmp_path, monkeypatch):
    from scipy.io import wavfile

    t = np.arange(44100) / 44100
    wavfile.write(tmp_path / "cd.wav", 44100, (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16))
    monkeypatch.setattr(A.shutil, "which", lambda name: None)
    audio = A.load_audio(tmp_path / "cd.wav")
    assert audio.size == SR and dominant_frequency(audio[1000:-1000]) == pytest.approx(440.0, abs=1.0)


def test_write_wav_failure_leaves_nothing(tmp_path, monkeypatch):
    target = tmp_path / "out.wav"

    def broken_open(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(A.wave, "open", broken_open)
    with pytest.raises(OSError):
        A.write_wav(target, tone())
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------- checks


def test_check_signal_accepts_speech_and_refuses_silence_clipping_and_empty(speech):
    A.check_signal(speech)
    with pytest.raises(AudioError, match="silent.*digital silence"):
        A.check_signal(np.zeros(SR * 2, np.float32))
    hiss = (np.random.default_rng(0).standard_normal(SR * 2) * 10 ** (-75 / 20)).astype(np.float32)
    with pytest.raises(AudioError, match="silent.*dBFS.*--list-devices"):
        A.check_signal(hiss)
    clipped = np.clip(3.0 * tone(amplitude=0.5), -1.0, 1.0)
    with pytest.raises(AudioError, match="clipped.*lower the microphone input gain"):
        A.check_signal(clipped)
    with pytest.raises(AudioError, match="No audio was recorded"):
        A.check_signal(np.zeros(100, np.float32))


def test_voice_activity_finds_speech_not_noise_tone_or_silence(speech):
    rng = np.random.default_rng(1)
    assert A.speech_seconds(speech) > 0.5 * speech.size / SR
    noisy = speech + rng.standard_normal(speech.size).astype(np.float32) * np.sqrt(np.mean(speech**2)) / 10 ** 0.5
    assert A.speech_seconds(noisy) > 2.0  # 10 dB SNR: still speech
    for level in (1e-3, 0.05, 0.3):
        assert A.speech_seconds(rng.standard_normal(SR * 5).astype(np.float32) * level) == 0.0
    assert A.speech_seconds(tone(seconds=5)) == 0.0
    assert A.speech_seconds(np.zeros(SR * 5, np.float32)) == 0.0


# ---------------------------------------------------------------------------- PortAudio missing


def test_portaudio_missing_gives_install_advice(monkeypatch):
    class NoPortAudio:
        def find_spec(self, name, path=None, target=None):
            if name == "sounddevice":
                raise OSError("PortAudio library not found")
            return None

    monkeypatch.delitem(sys.modules, "sounddevice", raising=False)
    monkeypatch.setattr(sys, "meta_path", [NoPortAudio(), *sys.meta_path])
    with pytest.raises(AudioError, match="PortAudio.*libportaudio2"):
        A.Recorder().start()
    with pytest.raises(AudioError, match="libportaudio2"):
        A.list_input_devices()


# ---------------------------------------------------------------------------- real ALSA device


@pytest.fixture(scope="module")
def alsa_env(tmp_path_factory, speech) -> dict[str, str]:
    """Environment for a subprocess whose default ALSA device (and logsam_* devices) replay files."""
    from ctypes.util import find_library

    if not ALSA_CONF.is_file() or find_library("portaudio") is None:
        pytest.skip("ALSA/PortAudio not installed (run tools/setup_env.sh)")
    folder = tmp_path_factory.mktemp("alsa")
    signals = {"tone": tone(seconds=4.0), "silence": np.zeros(SR * 4, np.float32),
               "clipped": np.clip(2.0 * tone(seconds=4.0, amplitude=1.0), -1, 1), "speech": speech}
    for name, signal in signals.items():
        (np.clip(signal, -1, 1) * 32767).astype("<i2").tofile(folder / f"{name}.raw")
    template = (ROOT / "Testing" / "alsa" / "asoundrc.in").read_text()
    (folder / "asoundrc").write_text(template.replace("@DIR@", str(folder)))
    return dict(os.environ, ALSA_CONFIG_PATH=f"{ALSA_CONF}:{folder / 'asoundrc'}", PYTHONPATH=str(ROOT))


def probe(alsa_env, tmp_path, device: str, seconds: float) -> tuple[np.ndarray, dict]:
    prefix = tmp_path / device
    result = subprocess.run([sys.executable, str(ROOT / "Testing" / "alsa" / "probe.py"), device, str(seconds),
                             str(prefix)], env=alsa_env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    return np.load(f"{prefix}.npy"), json.loads(Path(f"{prefix}.json").read_text())


def test_recorder_captures_a_known_tone_from_the_default_device(alsa_env, tmp_path):
    audio, meter = probe(alsa_env, tmp_path, "default", 1.5)
    assert "logsam_tone" in meter["devices"]
    assert audio.dtype == np.float32 and audio.size == int(1.5 * SR)
    assert meter["reached_max"] and meter["elapsed"] == pytest.approx(1.5)
    assert not meter["recording_after_max"] and not meter["recording_after_stop"]
    assert dominant_frequency(audio) == pytest.approx(440.0, abs=2.0)
    # A snapshot taken while recording is the beginning of the final recording (this file-backed
    # device delivers faster than real time, so it may already hold all of it).
    snapshot = np.load(tmp_path / "default_snapshot.npy")
    assert 0 < snapshot.size <= audio.size and np.array_equal(snapshot, audio[:snapshot.size])
    assert np.sqrt(np.mean(audio**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.03)
    assert meter["level"] == pytest.approx(0.3, abs=0.01)
    assert meter["level_db"] == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.5)
    A.check_signal(audio)


def test_recorder_by_name_silence_and_clipping_are_refused(alsa_env, tmp_path):
    silent, meter = probe(alsa_env, tmp_path, "logsam_silence", 1.0)
    assert silent.size == SR and meter["level_db"] == float("-inf")
    with pytest.raises(AudioError, match="silent"):
        A.check_signal(silent)
    clipped, meter = probe(alsa_env, tmp_path, "logsam_clipped", 1.0)
    assert meter["level"] > 0.99
    with pytest.raises(AudioError, match="clipped"):
        A.check_signal(clipped)


def test_recorder_delivers_speech_the_asr_voice_check_accepts(alsa_env, tmp_path):
    audio, _ = probe(alsa_env, tmp_path, "logsam_speech", 3.0)
    A.check_signal(audio)
    assert A.speech_seconds(audio) > 1.0


def run_cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    code = "import sys; from LoGSAMLib.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_record_cli_writes_the_wav(alsa_env, tmp_path):
    out = tmp_path / "dictation.wav"
    result = run_cli(["record", "-o", str(out), "--seconds", "1", "--device", "logsam_tone"], alsa_env)
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout
    audio = A.load_audio(out)
    assert audio.size == SR and dominant_frequency(audio) == pytest.approx(440.0, abs=2.0)
    listing = run_cli(["record", "--list-devices", "--json"], alsa_env)
    assert any(d["name"] == "logsam_speech" for d in json.loads(listing.stdout))


def test_record_cli_refuses_silence_without_writing(alsa_env, tmp_path):
    out = tmp_path / "dictation.wav"
    result = run_cli(["record", "-o", str(out), "--seconds", "1", "--device", "logsam_silence"], alsa_env)
    assert result.returncode == 2
    assert "silent" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
    bad = run_cli(["record", "-o", str(out), "--seconds", "1", "--device", "no_such_microphone"], alsa_env)
    assert bad.returncode == 2 and "no input device" in bad.stderr and "Traceback" not in bad.stderr


# ---------------------------------------------------------------------------- CLI stop logic


class FakeRecorder:
    """Stands in for PortAudio to test the CLI's stop handling (Enter, Ctrl-C) deterministically."""

    def __init__(self, interrupt: bool = False) -> None:
        self.interrupt = interrupt
        self.started = self.stopped = False
        self.elapsed, self.level, self.level_db = 0.0, 0.0, float("-inf")

    def start(self) -> None:
        self.started = True

    def wait(self, timeout: float) -> bool:
        if self.interrupt:
            raise KeyboardInterrupt
        threading.Event().wait(timeout)
        return False

    def stop(self) -> np.ndarray:
        self.stopped = True
        return tone(seconds=0.5)


def test_enter_stops_recording_and_eof_does_not(monkeypatch):
    from LoGSAMLib.cli import record_cmd

    stop = threading.Event()
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n"))
    record_cmd._watch_enter(stop)
    fake = FakeRecorder()
    audio = record_cmd.record(fake, stop, show_meter=False)
    assert fake.started and fake.stopped and audio.size == SR // 2

    eof = threading.Event()
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    record_cmd._watch_enter(eof)
    assert not eof.wait(0.3)


def test_ctrl_c_keeps_the_recording():
    from LoGSAMLib.cli import record_cmd

    fake = FakeRecorder(interrupt=True)
    audio = record_cmd.record(fake, threading.Event(), show_meter=False)
    assert fake.stopped and audio.size == SR // 2


def test_meter_line_shows_time_level_and_clipping():
    from LoGSAMLib.cli.record_cmd import _meter

    line = _meter(65.2, 0.5, -6.0)
    assert "01:05.2" in line and "-6.0 dBFS" in line and "CLIPPING" not in line
    assert "CLIPPING" in _meter(1.0, 1.0, -0.1)
    assert "-inf" in _meter(0.0, 0.0, float("-inf"))


def test_record_cli_needs_an_output(capsys):
    assert cli_main(["record"]) == 2
    assert "-o/--output" in capsys.readouterr().err

