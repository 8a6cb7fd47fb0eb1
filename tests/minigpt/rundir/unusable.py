"""One line of each way a line of a run file can be unusable: what every reader skips alike."""

from minigpt.rundir.journal import INT64


def unusable(own: str, other: str) -> list[bytes]:
    """One line of each way a line of a file holding `own` events (and not `other` ones)
    is no usable line."""
    return [
        b'{"event": "step", "step": 3, "lo',  # torn by a killed writer, then ended
        b"\xff\xfe not json",  # not UTF-8, not JSON
        f'{{"event": "{own}", "step": 4, "id": "'.encode() + b'\xff"}',  # JSON but not UTF-8
        b"[1, 2]",  # JSON, but no object
        b'{"event": "launch", "step": 4}',  # an event this version does not know
        f'{{"event": "{other}", "step": 4}}'.encode(),  # one the other file holds
        f'{{"event": "{own}"}}'.encode(),  # no step
        f'{{"event": "{own}", "step": 2.5}}'.encode(),  # a step that is no whole number
        f'{{"event": "{own}", "step": {INT64}}}'.encode(),  # one SQLite cannot keep
    ]


BAD_METRICS = unusable("step", "sample_done")  # for metrics.jsonl
BAD_SAMPLES = unusable("sample_done", "step")  # for samples.jsonl
