"""The one exception type for user errors: the CLI prints its message on one line, exit 1."""


class LutcError(Exception):
    """A problem with the user's model, options or IR, described in the user's terms.

    `node` names the model node or IR location the problem is at, when there is one.
    """

    def __init__(self, message: str, node: str | None = None):
        self.node = node
        super().__init__(f"{node}: {message}" if node else message)


class LutcWarning(UserWarning):
    """Something the user asked for that lutc did not fully do (e.g. a weight kept float
    although a weight format was asked for): the Python API warns, the CLI prints a note."""


def first_line(text: str, limit: int | None = None) -> str:
    """The first line of `text` (an exception's message, say), stripped, and cut to `limit`
    characters when given: messages lutc shows stay on one line. "" for an empty text."""
    text = text.strip()
    line = text.splitlines()[0] if text else ""
    return line if limit is None or len(line) <= limit else line[:limit] + " ..."
