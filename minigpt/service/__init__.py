"""The engine service: a run trained behind a socket that clients control.

`run` is the loop (evaluate and save when due, record every event), `engine`
serves it on the run directory's socket (`server`, `protocol`), streams
completions between steps (`sample_queue`) and answers inspections
(`inspector`); `follower` is the other ranks under torchrun. `client` is the
other end, which the dashboard, the CLI and the tests share; it and `protocol`
import no torch, so the dashboard can use them.

Built on the lesson (the flat minigpt modules) and the run directory; neither
imports it.
"""
