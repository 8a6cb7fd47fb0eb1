"""The minigpt-tui dashboard (Textual); it talks to the engine in minigpt."""
