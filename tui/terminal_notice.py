"""What a notice writes to the dashboard's terminal: the bell, and a desktop notification.

The bell (BEL) reaches the user in any terminal, over SSH too, and tmux passes it on by
itself. The desktop notification is two escape sequences, each ignored by a terminal that
does not know it: OSC 9 (`ESC ] 9 ; message BEL`: iTerm2, WezTerm, kitty, Windows
Terminal) and OSC 777 (`ESC ] 777 ; notify ; title ; body BEL`: VTE terminals such as GNOME
Terminal, foot, rxvt-unicode). Inside tmux they reach the outer terminal only wrapped for
passthrough (`ESC P tmux; ` + the sequence with every ESC doubled + `ESC \\`), and only
with tmux's `set -g allow-passthrough on`.

The text comes from the engine, which a client never trusts: control characters (which
could end a sequence early and start others) become spaces, the title's ";" (OSC 777's
separator) becomes ",", and each text is cut to MAX_CHARS.
"""

from __future__ import annotations

BEL, ESC = "\a", "\x1b"
MAX_CHARS = 200


def _plain(text: str) -> str:
    """text without control characters (or other unprintables), at most MAX_CHARS long."""
    return "".join(c if c.isprintable() else " " for c in text[:MAX_CHARS])


def _through_tmux(sequence: str) -> str:
    """An escape sequence wrapped so that tmux passes it to the terminal it runs in."""
    return f"{ESC}Ptmux;{sequence.replace(ESC, ESC * 2)}{ESC}\\"


def terminal_notice(title: str, message: str, tmux: bool) -> str:
    """The bell, then an OSC 9 and an OSC 777 notification (for tmux when tmux is true)."""
    title, message = _plain(title).replace(";", ","), _plain(message)
    sequences = [f"{ESC}]9;{title}: {message}{BEL}", f"{ESC}]777;notify;{title};{message}{BEL}"]
    if tmux:
        sequences = [_through_tmux(sequence) for sequence in sequences]
    return BEL + "".join(sequences)
