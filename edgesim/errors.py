"""Errors that reach the user as a message with a location and a hint, never a traceback."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input or machine: where, what, and how to fix it."""

    location: str
    message: str
    hint: str = ""

    def __str__(self) -> str:
        text = f"{self.location}: {self.message}"
        return one_line(f"{text} (hint: {self.hint})" if self.hint else text)


# Control characters (a newline in a YAML key, a NUL in a file) would break "one line per problem".
_CONTROLS = {code: f"\\x{code:02x}" for code in [*range(32), 127]} | {10: "\\n", 9: "\\t", 13: "\\r"}


def one_line(text: str) -> str:
    """`text` with every control character written as an escape, so that it prints as one line."""
    return text.translate(_CONTROLS)


class EdgesimError(Exception):
    """An error for the user: one or more problems, each printable on one line."""

    def __init__(self, problems: list[Problem] | Problem | str, hint: str = "", source: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem("edgesim", problems, hint)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = problems
        self.source = source
        super().__init__("\n".join(self.lines()))

    def lines(self) -> list[str]:
        """One line per problem, prefixed by the file it comes from when there is one."""
        prefix = f"{self.source}: " if self.source else ""
        return [f"{prefix}{problem}" for problem in self.problems]
