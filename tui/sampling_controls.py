"""The row of sampling controls the Generate and Inspect panes share.

Each control holds one setting of a sample command as TOML text, and is checked
by the config's own schema: the [sample] key of that name, and for the seed the
rule of train.seed (empty: a random seed). A wrong value is named with the
config's message, and the cursor goes to its control.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Input, Label

from minigpt.config import Config, apply_values, flat_values, parse_overrides
from minigpt.config_text import toml_value
from minigpt.errors import ConfigError

# The label of each control, in the order shown.
LABELS = {
    "temperature": "temp",
    "top_k": "top-k",
    "top_p": "top-p",
    "max_new_tokens": "tokens",
    "seed": "seed",
}
RANDOM = "seed"  # the one control that may stay empty: a random draw


def config_key(setting: str) -> str:
    """The config key whose rule a sample setting obeys."""
    return "train.seed" if setting == RANDOM else f"sample.{setting}"


def sample_setting(setting: str, raw: str) -> Any:
    """A sample setting typed as TOML, as the config's schema holds it; ConfigError if wrong."""
    key = config_key(setting)
    value = parse_overrides([f"{key}={raw}"])[key]
    return flat_values(apply_values(Config(), {key: value}))[key]


class SampleControls(Horizontal):
    """Labelled inputs for some of the sample settings."""

    def __init__(self, settings: Iterable[str], prefix: str, **kwargs: Any) -> None:
        """One input per setting, its id PREFIX-SETTING."""
        super().__init__(**kwargs)
        self.inputs = {key: Input(id=f"{prefix}-{key}", compact=True) for key in settings}

    def __getitem__(self, setting: str) -> Input:
        """The input of one setting."""
        return self.inputs[setting]

    def compose(self) -> ComposeResult:
        """Label, input, label, input..."""
        for key, control in self.inputs.items():
            yield Label(LABELS[key])
            yield control

    def show(self, values: Mapping[str, object]) -> None:
        """Put values in their controls as TOML (a missing one empties its control)."""
        self.show_texts({key: toml_value(value) for key, value in values.items()})

    def show_texts(self, texts: Mapping[str, str]) -> None:
        """Put texts in their controls as they are, quietly (no Input.Changed)."""
        for key, control in self.inputs.items():
            with control.prevent(Input.Changed):
                control.value = texts.get(key, "")

    def texts(self) -> dict[str, str]:
        """What each control holds, checked or not."""
        return {key: control.value for key, control in self.inputs.items()}

    def settings(self) -> dict[str, Any]:
        """The controls as a sample command's settings (an empty seed left out).

        ConfigError names the first wrong one, whose control gets the focus."""
        settings: dict[str, Any] = {}
        for key, control in self.inputs.items():
            raw = control.value.strip()
            if key == RANDOM and not raw:
                continue
            try:
                settings[key] = sample_setting(key, raw)
            except ConfigError:
                control.focus()
                raise
        return settings
