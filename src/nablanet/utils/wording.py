"""Words for messages and command-line help shared by the CLI, the presets' entry points
and the training loop (which sit on different levels of the import graph)."""
from __future__ import annotations

import argparse
import re

#: Sphinx markup in a docstring used as a description: ``literal`` and :role:`target`
_MARKUP = re.compile(r"``([^`]+)``|:[a-z]+:`~?([^`]+)`")


def plural(n, word: str) -> str:
    """``"1 epoch"``, ``"2 epochs"``: a count with its noun, for messages read by people."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def plain(text: str) -> str:
    """``text`` without Sphinx markup (what a terminal would show as literal backquotes)."""
    return _MARKUP.sub(lambda m: m.group(1) or m.group(2), text)


class Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line, ``nablanet: error: ...``, exit 2.

    Descriptions are often a module's docstring; ``--help`` shows them without the
    Sphinx markup a reader of a terminal would otherwise see as literal backquotes.
    """

    def __init__(self, *args, description=None, **kwargs):
        super().__init__(*args, description=plain(description) if description else None,
                         **kwargs)

    def error(self, message):
        self.exit(2, f"nablanet: error: {message} (see '{self.prog} --help')\n")
