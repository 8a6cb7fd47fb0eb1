"""minigpt.atomic: a file is replaced whole or not at all, and no temporary file stays."""

import os
from pathlib import Path

import pytest

from minigpt.atomic import write_atomic, write_folder_atomic, write_text_atomic


@pytest.mark.parametrize("durable", [False, True])
def test_a_write_replaces_the_file_and_returns_what_write_returned(
    tmp_path: Path, durable: bool
) -> None:
    """The new bytes replace the old, write's result comes back, the folder holds no temp."""
    path = tmp_path / "model.ckpt"
    path.write_bytes(b"old")
    assert write_atomic(path, lambda f: f.write(b"new content"), durable=durable) == 11
    assert path.read_bytes() == b"new content"
    assert os.listdir(tmp_path) == ["model.ckpt"]


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_keeps_the_old_file_and_leaves_no_temp(
    tmp_path: Path, error: BaseException
) -> None:
    """What write raises propagates unchanged, after half its bytes: the old file is whole."""
    path = tmp_path / "config.toml"
    path.write_text("old = 1\n", encoding="utf-8")

    def half_then_fail(f) -> None:
        """Write some bytes, then fail as a full disk or a ctrl+c would."""
        f.write(b"new = ")
        raise error

    with pytest.raises(type(error)) as raised:
        write_atomic(path, half_then_fail)
    assert raised.value is error
    assert path.read_text(encoding="utf-8") == "old = 1\n"
    assert os.listdir(tmp_path) == ["config.toml"]


def test_the_temporary_file_is_a_hidden_sibling_named_by_the_process(tmp_path: Path) -> None:
    """While writing, the bytes go to .NAME.PID.tmp beside the file (what a killed engine's
    RunDir.remove_temporaries sweeps), not to the file itself."""
    path = tmp_path / "model.ckpt"
    seen = []
    write_atomic(path, lambda f: seen.extend(os.listdir(tmp_path)))
    assert seen == [f".model.ckpt.{os.getpid()}.tmp"]


def test_text_into_a_missing_folder_is_an_oserror_and_creates_nothing(tmp_path: Path) -> None:
    """write_text_atomic raises the OSError of a folder that is not there, and makes none."""
    with pytest.raises(FileNotFoundError):
        write_text_atomic(tmp_path / "gone" / "config.toml", "x = 1\n")
    assert os.listdir(tmp_path) == []


def test_a_folder_appears_whole_in_place_of_an_empty_one(tmp_path: Path) -> None:
    """write_folder_atomic fills a hidden .NAME.PID.tmp sibling, then renames it over an
    empty folder; write's result comes back."""
    out = tmp_path / "export"
    out.mkdir()
    seen = []

    def fill(folder: Path) -> int:
        """Write one file and note where the writing happens."""
        seen.extend(os.listdir(tmp_path))
        return (folder / "weights").write_bytes(b"1234")

    assert write_folder_atomic(out, fill) == 4
    assert sorted(seen) == sorted(["export", f".export.{os.getpid()}.tmp"])
    assert os.listdir(tmp_path) == ["export"] and os.listdir(out) == ["weights"]


@pytest.mark.parametrize("taken", [False, True])
def test_a_failed_folder_leaves_nothing_it_made(tmp_path: Path, taken: bool) -> None:
    """A write that fails, or a folder that holds something when the rename comes, leaves
    no temporary folder and none of the parents the call made; a taken folder is kept."""
    out = tmp_path / "a" / "b" / "export"
    if taken:
        out.mkdir(parents=True)
        (out / "mine").write_text("kept", encoding="utf-8")

    def fill(folder: Path) -> None:
        """Write a file, then fail as a full disk would (unless the folder is taken)."""
        (folder / "half").write_bytes(b"12")
        if not taken:
            raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_folder_atomic(out, fill)
    if taken:
        assert os.listdir(out.parent) == ["export"] and os.listdir(out) == ["mine"]
    else:
        assert os.listdir(tmp_path) == []
