"""The one exception type whose message is meant for users."""


class UserError(Exception):
    """A problem with the user's input: the CLI prints the message on one line and exits non-zero."""

    def __init__(self, message: str, path: object | None = None, exit_code: int = 1) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.exit_code = exit_code  # 130 / 143 where the problem is an interruption
