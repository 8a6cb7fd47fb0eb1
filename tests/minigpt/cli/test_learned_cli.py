"""`minigpt learned`: the learned views of a run's eval as JSON or text, from its records."""

import json
from pathlib import Path

import pytest

from minigpt.cli.main import main
from minigpt.events import HeadRoles, LearnedEvent, MapPoints
from minigpt.rundir.learned import LearnedRecords

TEXT = ["The", "␣cat", "␣sat", "↵", "on"]
VOCAB = ["The", "␣cat", "␣sat", "↵", "on", "␣mat"]


def record(step: int, losses: list[float | None], induction: float) -> LearnedEvent:
    """A record of the five-token probe with these losses and one head."""
    ids = [[1, 2, 3, 4, 5], [2, 0, 1, 3, 4], [3, 1, 0, 2, 4], [4, 0, 1, 2, 3], [5, 0, 1, 2, 3]]
    guess_ids: list[int | None] = [None] * 5 + [i for row in ids[:4] for i in row]
    guess_probs: list[float | None] = [None] * 5 + [0.5, 0.2, 0.1, 0.1, 0.1] * 4
    return LearnedEvent(
        step=step,
        probe_loss=losses,
        guess_ids=guess_ids,
        guess_probs=guess_probs,
        position_loss=[3.0, 2.5, 2.0, 1.5],
        context_gain=1.5,
        heads=[[HeadRoles(0.9, induction, 0.3)]],
        embedding_map=MapPoints(ids=[0, 1, 2], x=[0.0, 1.0, -1.0], y=[1.0, 0.0, 0.5]),
    )


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run folder with a probe and records at steps 0, 100 and 200."""
    records = LearnedRecords(tmp_path)
    records.write_probe({"ids": [0, 1, 2, 3, 4], "text": TEXT, "vocab": VOCAB})
    records.write(record(0, [None, 1.8, 1.8, 1.8, 1.8], 0.05))
    records.write(record(100, [None, 1.0, 1.6, 1.8, 0.2], 0.30))
    records.write(record(200, [None, 0.5, 1.9, 1.7, 0.1], 0.80))
    return tmp_path


def test_json_has_the_views_of_the_last_eval(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--json: the step, each probe token's text, loss and guesses, the curve, heads, map."""
    assert main(["learned", "--run-dir", str(run_dir), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["step"] == 200
    assert out["steps"] == [0, 100, 200]
    assert [t["text"] for t in out["probe"]] == TEXT
    assert [t["loss"] for t in out["probe"]] == [None, 0.5, 1.9, 1.7, 0.1]
    assert out["probe"][1]["guesses"][0] == {"token": "␣cat", "id": 1, "prob": 0.5}
    assert out["probe"][0]["guesses"] == []
    assert out["position_loss"] == [3.0, 2.5, 2.0, 1.5]
    assert out["heads"] == [[{"previous_token": 0.9, "induction": 0.8, "entropy": 0.3}]]
    assert out["embedding_map"][1] == {"id": 1, "text": "␣cat", "x": 1.0, "y": 0.0}
    assert "since" not in out


def test_at_and_since_pick_evals_and_the_changes(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--at picks the eval at or before a step; --since adds each token's change."""
    assert (
        main(["learned", "--run-dir", str(run_dir), "--at", "150", "--since", "0", "--json"]) == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert out["step"] == 100
    assert out["since"]["step"] == 0
    changes = [t["change"] for t in out["probe"]]
    assert changes[0] is None
    assert changes[1:] == pytest.approx([-0.8, -0.2, 0.0, -1.6])
    assert out["since"]["heads"][0][0]["induction"] == 0.05


def test_plain_text_marks_surprise_under_each_line(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Without a terminal: the passage's lines, each with a line of marks, and the heads."""
    assert main(["learned", "--run-dir", str(run_dir)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    first = lines.index("The cat sat")
    assert lines[first + 2] == "on"  # the newline token ends the first line
    marks = lines[first + 1]
    assert len(marks) == len("The cat sat") and marks[:3] == "   "  # no loss for the first
    assert "\x1b[" not in out
    assert "block 0 head 0: prev  0.90  induction  0.80" in out


def test_since_lists_the_tokens_that_moved_most(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--since in text: the passage marked easier or harder, and the largest changes first."""
    assert main(["learned", "--run-dir", str(run_dir), "--since", "0"]) == 0
    out = capsys.readouterr().out
    moved = out[out.index("Moved most:") :].splitlines()[1:3]
    assert "'on'" in moved[0] and "easier by 1.70" in moved[0]
    assert "'␣cat'" in moved[1] and "easier by 1.30" in moved[1]


def test_a_run_without_records_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A run trained before the views (or with them off): one line, exit code 2."""
    assert main(["learned", "--run-dir", str(tmp_path)]) == 2
    assert "no learned records" in capsys.readouterr().err
