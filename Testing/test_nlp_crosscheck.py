"""Issue 14: German dictations through the speech path, and the transcript / translation cross-check."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from LoGSAMLib.cli import main
from LoGSAMLib.nlp import extract
from LoGSAMLib.nlp.crosscheck import cross_check
from LoGSAMLib.pipeline import Pipeline, PipelineOptions
from LoGSAMLib.types import Transcript

DATA = Path(__file__).parent / "data"


def load_dictations() -> list[tuple[list[str], list[str], str, str]]:
    rows = []
    for line in (DATA / "nlp_german_dictations.tsv").read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        affirmed, negated, german, english = line.split("\t")
        rows.append(([] if affirmed == "-" else affirmed.split(","), [] if negated == "-" else negated.split(","),
                     german, english))
    return rows


def test_german_dictations_and_their_translations_agree(capsys):
    rows = load_dictations()
    assert len(rows) >= 30
    german = [extract(row[2]) for row in rows]
    exact = sum((f.affirmed, f.negated) == (row[0], row[1]) for f, row in zip(german, rows, strict=True))
    denied_affirmed = [row[2] for f, row in zip(german, rows, strict=True) if set(row[1]) & set(f.affirmed)]
    checks = [cross_check(row[2], row[3], "de") for row in rows]
    agree = sum(check.agree for check in checks)
    with capsys.disabled():
        print(f"\nGerman dictations: {len(rows)}, exact class sets {exact / len(rows):.1%}, "
              f"transcript/translation agree {agree / len(rows):.1%}")
    assert not denied_affirmed
    assert exact / len(rows) >= 0.97
    assert all(f.language == "de" for f in german)
    # Faithful translations: the cross-check agrees, and names what both texts affirm.
    assert agree / len(rows) >= 0.97
    for check, row in zip(checks, rows, strict=True):
        if check.agree:
            assert set(check.original_classes) == set(check.translation_classes) == set(row[0])


@pytest.mark.parametrize("german,english,label,original,translation", [
    ("Kein Hinweis auf ein Gliom.", "Evidence of a glioma.", "glioma", "negated", "affirmed"),
    ("Ein Meningeom ist ausgeschlossen.", "A meningioma is suspected.", "meningioma", "negated", "affirmed"),
    ("Kein Anhalt für ein Hypophysenadenom.", "Findings suggestive of a pituitary adenoma.", "pituitary",
     "negated", "affirmed"),
    ("Gliom links frontal.", "No glioma on the left frontal.", "glioma", "affirmed", "negated"),
    ("Verdacht auf ein Meningeom.", "Unremarkable study.", "meningioma", "affirmed", "not mentioned"),
])
def test_a_lost_or_added_negation_is_a_disagreement(german, english, label, original, translation):
    check = cross_check(german, english, "de")
    assert not check.agree and check.checked
    assert check.details[label] == {"original": original, "translation": translation}
    assert label in check.message and "disagree" in check.message
    d = check.to_dict()
    assert set(d) >= {"agree", "original_classes", "translation_classes", "message"}
    assert d["agree"] is False
    json.dumps(d)  # the report can hold it


def test_unsupported_language_is_not_checked_but_said():
    check = cross_check("Lésion frontale gauche, compatible avec un gliome.",
                        "Left frontal lesion, consistent with a glioma.", "fr")
    assert check.agree and not check.checked
    assert check.translation_classes == ["glioma"] and "French" in check.message
    detected = cross_check("Kein Hinweis auf ein Gliom.", "Evidence of a glioma.", "")
    assert detected.language == "de" and not detected.agree


def test_german_dictations_spoken_through_the_speech_path(tiny_home, one_torch_thread):
    """espeak-ng speaks every German dictation; the tiny (random-weight) Whisper transcribes and translates
    it; the cross-check and the NLP run on what it gave. The text is random, so the path is what is tested."""
    from LoGSAMLib.testing.speech import speak

    pipe = Pipeline(PipelineOptions(whisper_model="whisper-base", asr_backend="openai", language="de",
                                    device="cpu"))
    rows = load_dictations()
    for _affirmed, _negated, german, _english in rows:
        transcript = pipe.transcribe(speak(german, voice="de"))
        assert transcript.language == "de" and isinstance(transcript.text, str)
        assert transcript.translation is not None  # German speech is translated for the English NLP
        check = pipe.cross_check(transcript)
        assert check is not None and check.language == "de"
        findings = pipe.extract(transcript.english)
        assert isinstance(check.agree, bool) and findings.text == transcript.english
    english = Transcript("Left frontal glioma.", "en")
    assert pipe.cross_check(english) is None  # nothing to compare without a translation


def _write_silence(path, seconds: float = 0.5, rate: int = 16000) -> None:
    import wave

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))


@pytest.fixture
def small_volume(tmp_path):
    from LoGSAMLib.testing.phantoms import LesionSpec, make_phantom
    from LoGSAMLib.volume import write_volume

    phantom = make_phantom([LesionSpec(kind="glioma", radius_mm=10.0, side="left", region="frontal")],
                           spacing=(6.0, 6.0, 8.0), seed=2)
    path = tmp_path / "t1.nii.gz"
    write_volume(phantom.volume, path)
    return path


@pytest.mark.parametrize("confirm,code", [(False, 4), (True, 1)])
def test_run_stops_when_transcript_and_translation_disagree(small_volume, tmp_path, monkeypatch, capsys,
                                                            confirm, code):
    # The tiny Whisper's text is random; a fixed transcript stands in for what large-v3 would hear.
    heard = Transcript("Kein Hinweis auf ein Gliom.", "de", translation="Evidence of a glioma.")
    monkeypatch.setattr(Pipeline, "transcribe", lambda self, audio, **kwargs: heard)
    audio = tmp_path / "dictation.wav"
    _write_silence(audio)  # loaded and level-checked, never transcribed: transcribe is the fixed one above
    out = tmp_path / "seg.nii.gz"
    args = ["run", str(small_volume), "--audio", str(audio), "-o", str(out), "--device", "cpu"]
    assert main(args + (["--confirm"] if confirm else [])) == code  # no terminal under pytest: no "yes"
    err = capsys.readouterr().err
    assert "CROSS-CHECK FAILED" in err and "glioma" in err
    assert not out.exists()
    report = json.loads((tmp_path / "seg.report.json").read_text())
    assert report["cross_check"]["agree"] is False
    assert report["cross_check"]["original_classes"] == [] and report["cross_check"]["translation_classes"] == [
        "glioma"]
    assert report["transcript"]["text"] == "Kein Hinweis auf ein Gliom."  # the transcript is kept
    assert report["outputs"] == []


def test_run_agreeing_cross_check_is_in_the_report(small_volume, tmp_path, monkeypatch):
    heard = Transcript("Kein Hinweis auf ein Gliom.", "de", translation="No evidence of a glioma.")
    monkeypatch.setattr(Pipeline, "transcribe", lambda self, audio, **kwargs: heard)
    audio = tmp_path / "dictation.wav"
    _write_silence(audio)
    out = tmp_path / "seg.nii.gz"
    assert main(["run", str(small_volume), "--audio", str(audio), "-o", str(out), "--device", "cpu"]) == 3
    report = json.loads((tmp_path / "seg.report.json").read_text())
    assert report["cross_check"]["agree"] is True and report["findings"]["negated"] == ["glioma"]
    assert report["findings"]["language"] == "en" and report["findings"]["warnings"] == []
