"""`logsam extract`: TEXT and --file, human and JSON Lines output, user errors."""

from __future__ import annotations

import io
import json

import pytest

from LoGSAMLib.cli import main


def test_text_gives_a_human_summary(capsys):
    assert main(["extract", "Possible left frontal glioblastoma; no meningioma. Small hemorrhage."]) == 0
    out = capsys.readouterr().out
    assert "Affirmed: glioma (uncertain; left frontal)" in out
    assert "Negated: meningioma" in out
    assert "Prompt: glioma ." in out
    assert "hemorrhage" in out


def test_unsupported_only_says_what_was_found(capsys):
    assert main(["extract", "Multiple", "brain", "metastases."]) == 0  # several words are joined
    assert "No supported tumor class found; mentioned: metastasis" in capsys.readouterr().out


def test_text_json_is_one_object(capsys):
    assert main(["extract", "Right convexity meningioma.", "--json"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["affirmed"] == ["meningioma"] and record["negated"] == []
    assert record["prompt"] == "meningioma ."
    assert record["findings"][0]["side"] == "right" and record["findings"][0]["region"] == "convexity"
    assert record["classes"]["meningioma"]["assertion"] == "affirmed"


def test_file_gives_json_lines_in_input_order(tmp_path, capsys):
    path = tmp_path / "dictations.txt"
    path.write_text("no glioma; meningioma\n\n   \nGBM left temporal\nNormal study.\n", encoding="utf-8")
    assert main(["extract", "--file", str(path), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["line"] for r in records] == [1, 4, 5]
    assert [(r["affirmed"], r["negated"]) for r in records] == [
        (["meningioma"], ["glioma"]), (["glioma"], []), ([], [])]
    assert [r["prompt"] for r in records] == ["meningioma .", "glioma .", ""]


def test_file_human_output_and_style(tmp_path, capsys):
    path = tmp_path / "d.txt"
    path.write_text("pituitary macroadenoma\nknown falcine meningioma\n", encoding="utf-8")
    assert main(["extract", "-f", str(path), "--style", "descriptive"]) == 0
    out = capsys.readouterr().out
    assert "Line 1: pituitary macroadenoma" in out and "Prompt: pituitary tumor ." in out
    assert "Line 2: known falcine meningioma" in out and "meningioma (historical; falx)" in out


def test_file_from_standard_input(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("left frontal glioma\n"))
    assert main(["extract", "--file", "-", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["affirmed"] == ["glioma"]


@pytest.mark.parametrize("argv, message", [
    (["extract"], "No dictation given"),
    (["extract", "   "], "No dictation given"),
    (["extract", "glioma", "--file", "x.txt"], "not both"),
    (["extract", "--file", "/nonexistent/dictations.txt"], "no such file"),
])
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_empty_file_is_an_error(tmp_path, capsys):
    path = tmp_path / "empty.txt"
    path.write_text("\n  \n", encoding="utf-8")
    assert main(["extract", "--file", str(path)]) == 2
    assert "every line is empty" in capsys.readouterr().err


def test_non_utf8_file_is_an_error(tmp_path, capsys):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Meningeom \xfcber der Konvexit\xe4t".encode("latin-1"))
    assert main(["extract", "--file", str(path)]) == 2
    assert "UTF-8" in capsys.readouterr().err


def test_negated_classes_say_why(capsys):
    assert main(["extract", "Kein Hinweis auf ein Meningeom. Mother had a glioma."]) == 0
    out = capsys.readouterr().out
    assert "Negated: meningioma (negation: 'Kein Hinweis auf' (before)), glioma (family: 'Mother' (before))" in out
