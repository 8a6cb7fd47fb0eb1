"""Driving a whole run in-process, for the tests that train one."""

from minigpt.events import Event
from minigpt.service.run import Run


def train_to_end(run: Run) -> list[Event]:
    """Advance a run to its end and close it, returning every event."""
    events: list[Event] = []
    while not run.done:
        events.extend(run.advance())
    run.close()
    return events
