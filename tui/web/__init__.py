"""The dashboard in a browser tab: `minigpt-tui --serve` (docs/architecture.md, README)."""
