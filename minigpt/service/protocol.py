"""The engine's control protocol: JSON lines over a unix socket.

Events flow engine -> clients, one JSON object a line, each with "event" and
"time" (see events.py). Commands flow clients -> engine, each a JSON object
with "cmd", an optional "id" echoed in the replies, and the arguments below.
`parse_command` turns one received line into a Command or raises
ProtocolError with a message fit to send back to that client; nothing a
client sends can do more than that.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from minigpt.errors import MiniGPTError
from minigpt.events import ConfigRejectedEvent, ErrorEvent

PROTOCOL_VERSION = 1
MAX_LINE_BYTES = 1 << 20  # a longer command line is refused, not buffered without end

# Each command's arguments and the JSON types each accepts.
_NUMBER = (int, float)
COMMANDS: dict[str, dict[str, tuple[type, ...]]] = {
    "start": {},
    "pause": {},
    "resume": {},
    "stop": {},
    "save": {},
    "eval": {},
    "sample": {
        "prompt": (str,),
        "max_new_tokens": (int,),
        "temperature": _NUMBER,
        "top_k": (int,),
        "top_p": _NUMBER,
        "seed": (int,),
    },
    "cancel_sample": {"sample_id": (str,)},
    "inspect": {
        "prompt": (str,),
        "temperature": _NUMBER,
        "top_k": (int,),
        "top_p": _NUMBER,
        "position": (int,),
        "top": (int,),
        "attention": (bool,),
    },
    "set": {"values": (dict,), "toml": (str,), "restart": (bool,)},
    "shutdown": {"save": (bool,)},
}


class ProtocolError(MiniGPTError):
    """A command line that cannot be carried out as sent."""

    def __init__(self, message: str, request_id: str | None = None) -> None:
        """Keep the command's id, when it had one, so the reply can name it."""
        super().__init__(message)
        self.request_id = request_id


@dataclass
class Command:
    """One parsed client command."""

    cmd: str
    id: str | None = None
    args: dict[str, Any] = field(default_factory=dict)


def parse_command(line: bytes | str) -> Command:
    """Parse and type-check one command line."""
    try:
        data = json.loads(line)
    except (ValueError, RecursionError):
        raise ProtocolError("malformed JSON: send one JSON object per line") from None
    if not isinstance(data, dict):
        raise ProtocolError('a command must be a JSON object with a "cmd" key')
    request_id = data.pop("id", None)
    if request_id is not None and not isinstance(request_id, (str, int)):
        raise ProtocolError('"id" must be a string or an integer')
    request_id = None if request_id is None else str(request_id)
    try:
        return Command(_check(data), request_id, data)
    except ProtocolError as error:
        error.request_id = request_id
        raise


def _check(data: dict[str, Any]) -> str:
    """Pop and check "cmd", then check the remaining arguments against COMMANDS."""
    cmd = data.pop("cmd", None)
    if not isinstance(cmd, str):
        raise ProtocolError('missing "cmd": say which command, e.g. {"cmd": "pause"}')
    if cmd not in COMMANDS:
        raise ProtocolError(f"unknown command {cmd[:40]!r}; known: {', '.join(COMMANDS)}")
    allowed = COMMANDS[cmd]
    for key, value in data.items():
        if key not in allowed:
            known = ", ".join(allowed) or "none"
            raise ProtocolError(f"{cmd}: unknown argument {key[:40]!r} (arguments: {known})")
        types = allowed[key]
        if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
            wanted = " or ".join(t.__name__ for t in types)
            raise ProtocolError(f"{cmd}: {key} must be {wanted}, got {type(value).__name__}")
    return cmd


def failure_event(command: Command | None, error: Exception) -> ErrorEvent:
    """The error that answers a command which could not be carried out: a MiniGPTError's own
    message, anything else as an internal error naming the command (a bug costs one command)."""
    request_id = command.id if command else getattr(error, "request_id", None)
    if isinstance(error, MiniGPTError):
        return ErrorEvent(str(error), id=request_id)
    what = command.cmd if command else "a command"
    message = f"internal error while carrying out {what}: {type(error).__name__}: {error}"
    return ErrorEvent(message, id=request_id)


# The engine's refusals, worded here (no torch) so the tests' fake engine gives the same.


def at_max_iters(max_iters: int) -> ProtocolError:
    """Why start (or resume) cannot go on: the run has trained to its max_iters."""
    return ProtocolError(f"start: already at max_iters ({max_iters}); raise train.max_iters first")


def restart_refused(keys: list[str], request_id: str | None) -> ConfigRejectedEvent:
    """The answer to a set of keys that need a fresh model, sent without restart=true."""
    reason = "these keys need a fresh model; send restart=true to start over"
    return ConfigRejectedEvent(keys, reason, id=request_id)


def encode(message: dict[str, Any]) -> bytes:
    """One message as a JSON line."""
    return (json.dumps(message, ensure_ascii=False) + "\n").encode("utf-8")
