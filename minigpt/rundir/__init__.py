"""The run directory: the files a run leaves in runs/NAME/, and how to read them.

`layout` names the files and holds the run's lock; `journal` appends events to
metrics.jsonl and reads them back; `history_index` keeps history.sqlite, the
index that makes a run open as fast at any length; `history` is what a dashboard
is told of the past when it attaches; `differences` which settings differ between runs.

Torch-free, so the dashboard can read a run: it imports only minigpt's shared
words (config, events, errors, atomic), never torch or the engine service.
"""
