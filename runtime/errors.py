"""The one exception type for user errors: the CLI prints its message on one line, exit 1."""


class LutcError(Exception):
    """A problem with the user's model, options or IR, described in the user's terms.

    `node` names the model node or IR location the problem is at, when there is one.
    """

    def __init__(self, message: str, node: str | None = None):
        self.node = node
        super().__init__(f"{node}: {message}" if node else message)
