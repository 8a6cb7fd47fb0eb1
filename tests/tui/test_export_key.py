"""x exports the open run's model for transformers, in a subprocess, and says where."""

from pathlib import Path

from minigpt.events import CheckpointEvent
from tests.minigpt.export.exports import train_run, write_corpus
from tests.tui.pilot import attached, until
from tests.tui.scripted import ScriptedLink, hello
from tests.warm import ForkServer
from tui.export import export_folder


def said(app) -> bool:
    """Whether the export has said how it went, in the Log."""
    return any(line.startswith("export:") for line in app.log_lines)


async def test_x_without_a_checkpoint_says_to_save_first(scripted) -> None:
    """No model.ckpt yet: nothing runs, and the dashboard says how to get one."""
    async with attached(scripted) as (app, pilot):
        await pilot.press("x")
        await until(pilot, lambda: said(app))
        assert "export: No checkpoint to export yet: press s to save one" in app.log_lines[-1]
        assert not (scripted.run_dir / "export").exists()


async def test_x_exports_the_last_checkpoint_into_the_run(
    tmp_path: Path, fork_server: ForkServer
) -> None:
    """A trained run's model.ckpt becomes a transformers folder under export/, and the Log
    and a notice say where; a second x says it is there already."""
    short = {"train.max_iters": 2, "train.eval_interval": 2}
    run_dir = train_run(tmp_path / "run", write_corpus(tmp_path), fork_server, **short)
    checkpoint = CheckpointEvent(str(run_dir / "model.ckpt"), 2)
    link = ScriptedLink(run_dir)
    finished = hello(state="finished", step=2, last_checkpoint=checkpoint)
    async with attached(link, (100, 30), finished) as (app, pilot):
        await pilot.press("x")
        await until(pilot, lambda: said(app))
        out = export_folder(run_dir, 2)
        assert app.log_lines[-1] == (
            f"export: Exported step 2 to {out}: AutoModelForCausalLM.from_pretrained('{out}') "
            "loads it (minigpt export --help for TensorBoard)."
        )
        assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
        await pilot.press("x")
        await until(pilot, lambda: "already exported" in app.log_lines[-1])
        assert app.handler_errors == 0


async def test_x_on_a_damaged_checkpoint_says_why_in_one_line(scripted) -> None:
    """minigpt export's one line of error is what the dashboard says, and nothing is left."""
    (scripted.run_dir / "model.ckpt").write_bytes(b"PK\x03\x04" + bytes(100))
    checkpoint = CheckpointEvent(str(scripted.run_dir / "model.ckpt"), 5)
    async with attached(scripted, hello=hello(step=5, last_checkpoint=checkpoint)) as (app, pilot):
        await pilot.press("x")
        await until(pilot, lambda: said(app), timeout=120)
        assert app.log_lines[-1].startswith("export: Export failed: ")
        assert "minigpt: error" not in app.log_lines[-1] and "damaged" in app.log_lines[-1]
        assert not export_folder(scripted.run_dir, 5).exists()
