"""The one error hierarchy users see.

Every problem a user can cause or fix (a bad config key, a missing corpus, a
damaged checkpoint) raises a subclass of MiniGPTError with a one-line message
that names what to fix. The CLI prints that line and exits 2; the TUI shows it
inline. Anything else escaping is a bug.
"""


class MiniGPTError(Exception):
    """Base class: a problem with the user's input, reported in one line."""


class ConfigError(MiniGPTError):
    """A configuration key is unknown, mistyped, out of range or inconsistent."""

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        """The one-line message, and where in the TOML text the problem is when known."""
        super().__init__(message)
        self.line = line
        self.column = column


class DataError(MiniGPTError):
    """The corpus is missing, empty, undecodable or too short."""


class TokenizerError(MiniGPTError):
    """Text cannot be encoded, or the tokenizer files are missing or damaged."""


class UnseenCharactersError(TokenizerError):
    """Text holds characters the char tokenizer never saw in its training corpus."""

    def __init__(self, missing: list[str], known: int) -> None:
        """The characters missing, in the order they first appear (the first ten named),
        and how many the tokenizer knows."""
        shown = ", ".join(repr(c) for c in missing[:10])
        more = f" (and {len(missing) - 10} more)" if len(missing) > 10 else ""
        super().__init__(
            f"characters not in this model's vocabulary: {shown}{more}; the char tokenizer"
            f" only knows the {known} characters of its training corpus"
        )
        self.missing = missing


class CheckpointError(MiniGPTError):
    """A checkpoint cannot be written, read, or does not fit this run."""


class DivergedError(MiniGPTError):
    """The loss stopped being a finite number (usually a learning rate too high)."""

    def __init__(self, message: str, step: int, loss: float) -> None:
        """The step whose loss was not finite, and that loss."""
        super().__init__(message)
        self.step = step
        self.loss = loss


class EngineError(MiniGPTError):
    """An engine cannot start (its run is in use) or cannot be reached."""


class ExportError(MiniGPTError):
    """An export cannot be made: its folder is taken or unwritable, its extra is missing, or
    the model has no faithful form in the target format."""


def described(error: BaseException) -> str:
    """An exception as its type and message, for a person."""
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
