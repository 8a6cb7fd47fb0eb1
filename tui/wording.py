"""How the dashboard words engine events in its header and Log (any value may be missing)."""

from __future__ import annotations

from minigpt.display import number, ratio
from minigpt.events import ConfigAppliedEvent, EvalEvent, ModelFacts


def header(state: str, facts: ModelFacts | None) -> str:
    """The header's second line: the state, and what the model is once known."""
    if facts is None:
        return state
    params = ratio(facts.params, 1e6)
    return (
        f"{state} · {facts.device or '?'} · {number(params, '.2f')}M params · "
        f"vocab {number(facts.vocab_size, ',')} {facts.tokenizer}"
    )


def eval_line(event: EvalEvent) -> str:
    """An eval for the Log: its losses, then the health figures the engine sent."""
    parts = [
        f"step {number(event.step, ',')}: train loss {number(event.train_loss, '.4f')}, "
        f"val loss {number(event.val_loss, '.4f')}"
    ]
    if event.val_bpb is not None:
        parts.append(f"{event.val_bpb:.3f} bits/byte")
    if event.tokens_seen is not None:
        parts.append(
            f"{number(event.tokens_seen, ',')} tokens seen ({number(event.epochs, '.2f')} epochs)"
        )
    for name, values, spec in (
        ("update ratio", event.update_ratio, ".1e"),
        ("weight norm", event.weight_norm, ".3g"),
    ):
        if values:
            parts.append(f"{name} by block {' '.join(number(v, spec) for v in values)}")
    return " · ".join(parts)


def changes_text(event: ConfigAppliedEvent) -> str:
    """What a config change changed: each key's old and new value."""
    changes = ", ".join(
        f"{key} {' -> '.join(map(str, change))}" for key, change in event.changes.items()
    )
    return changes or "no change"


def per_step_ms(seconds: float | None, steps: int | None) -> float:
    """Average milliseconds a step from a run's totals (0 when unknown)."""
    if not seconds or not steps or steps <= 0:
        return 0.0
    return ratio(1000 * seconds, steps) or 0.0
