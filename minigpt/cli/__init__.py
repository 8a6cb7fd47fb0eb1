"""The `minigpt` command line: `main` parses, `commands` carries each subcommand out.

The top layer of the engine's side: it may import every other family (the
lesson, the run directory, the engine service, export), and nothing in
minigpt imports it back. `options` (the run options shared with
`minigpt-tui`), `status`, `learned` and `compare` are torch-free.
"""
