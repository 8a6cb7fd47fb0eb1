"""Two viewers of one real engine: each streams and cancels only its own completions."""

import json

from minigpt.events import SampleDoneEvent
from minigpt.rundir.layout import RunDir
from minigpt.service.client import Client
from tests.tui.pilot import attached, running_config, until
from tui.generate_pane import GeneratePane


async def test_two_viewers_sample_at_once_without_crossed_wires(make_link) -> None:
    """A dashboard and a second client sample together: the dashboard streams only its own
    text, escape cancels only its own, both completions are listed with distinct ids, and
    the other viewer's config change shows in this dashboard."""
    link = make_link("sample.max_new_tokens=100000")  # ours streams until cancelled
    async with attached(link) as (app, pilot):
        other = Client.connect(link.run_dir)
        theirs = other.send("sample", prompt="on mat", max_new_tokens=60)
        await pilot.press("g", *"the cat", "enter")
        pane = app.query_one(GeneratePane)
        await until(pilot, lambda: len(next((s.text for s in pane.streams.values()), "")) > 5)
        (ours,) = pane.streams
        assert ours != theirs
        assert str(pane.streaming.render()).startswith("the cat")
        await pilot.press("escape")  # cancels ours only
        await until(pilot, lambda: len(pane.finished) == 2, timeout=30)
        by_prompt = {entry.prompt: entry for entry in pane.finished}
        assert "cancelled" in by_prompt["the cat"].note
        assert "cancelled" not in by_prompt["on mat"].note  # theirs ran to its end
        done = other.wait_for(lambda e: isinstance(e, SampleDoneEvent) and e.id == theirs)
        assert isinstance(done, SampleDoneEvent) and not done.cancelled and done.tokens == 60
        records = [
            json.loads(line) for line in RunDir(link.run_dir).samples.read_text().splitlines()
        ]
        assert sorted(r["id"] for r in records) == sorted({ours, theirs})
        other.send("set", values={"train.learning_rate": 0.002})
        await until(pilot, lambda: running_config(app).train.learning_rate == 0.002)
        assert any("applied train.learning_rate" in line for line in app.log_lines)
        assert app.handler_errors == 0
        other.close()
