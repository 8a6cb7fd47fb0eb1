"""The Config pane on its own (no engine): loading, keeping the user's text, reverting keys."""

import re
from dataclasses import fields

import pytest
from textual.app import App, ComposeResult

from minigpt.config import (
    Config,
    TrainConfig,
    apply_values,
    config_to_toml,
    is_hot,
    parse_config,
)
from minigpt.config_header import DEFAULT_HEADER, RUNNING_HEADER
from tui.config_pane import ConfigPane


class PaneApp(App[None]):
    """Just the pane."""

    def compose(self) -> ComposeResult:
        """One Config pane."""
        yield ConfigPane()


@pytest.mark.parametrize("header", [DEFAULT_HEADER, RUNNING_HEADER])
def test_headers_name_every_train_key_that_needs_a_fresh_start(header: str) -> None:
    """The "[train] (but ...)" list in config.toml's and the pane's header is the keys'
    own hot/restart rule, so a new restart key cannot be left out of it."""
    named = re.search(r"\[train\] \(but ([^)]*)\)", header.replace("\n# ", " "))
    assert named is not None
    restart = [f.name for f in fields(TrainConfig) if not is_hot(f"train.{f.name}")]
    assert named[1].split(", ") == restart


async def test_the_running_config_fills_an_empty_editor() -> None:
    """Even the default config (which "" would parse to) is shown in full, with comments."""
    app = PaneApp()
    async with app.run_test(size=(100, 30)):
        pane = app.query_one(ConfigPane)
        pane.vocab_size, pane.running = 6337, Config()
        assert pane.editor.text == config_to_toml(Config(), RUNNING_HEADER)
        assert "# width of each token's vector" in pane.editor.text


async def test_the_users_text_survives_a_change_from_elsewhere() -> None:
    """Unapplied edits stay when the running config changes; ctrl+r then shows the new one."""
    app = PaneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        pane = app.query_one(ConfigPane)
        pane.vocab_size, pane.running = 6337, Config()
        pane.replace_text("[train]\nmax_iters = 10  # mine\n")
        changed = apply_values(Config(), {"sample.temperature": 0.5})
        pane.running = changed
        assert pane.editor.text == "[train]\nmax_iters = 10  # mine\n"
        assert "edits are kept" in str(pane.status.render())
        pane.editor.focus()
        await pilot.press("ctrl+r")
        assert parse_config(pane.editor.text) == changed


async def test_revert_rewrites_a_layout_it_cannot_edit_and_says_so() -> None:
    """An inline table cannot be edited in place: the text is written out anew, correctly."""
    app = PaneApp()
    async with app.run_test(size=(100, 30)):
        pane = app.query_one(ConfigPane)
        pane.vocab_size, pane.running = 6337, Config()
        pane.replace_text("model = { d_model = 64 }\n")
        pane.revert_keys(["model.d_model"])
        assert parse_config(pane.editor.text) == Config()
        assert "rewritten" in str(pane.status.render())
