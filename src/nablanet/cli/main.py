"""``nablanet``: the entry point that dispatches to the subcommands.

Each name in :data:`COMMANDS` is a module ``nablanet.cli.<name>`` with
``add_parser(subparsers)`` and ``run(args) -> int``. Anything the user can fix (a
:class:`~nablanet.errors.NablanetError`, a file that cannot be read or written, an
array too large for memory) is reported as one line, ``nablanet: error: <message>``,
with exit status 2.
"""
from __future__ import annotations

import importlib
import sys

from .. import __version__
from ..errors import NablanetError
from ..utils.wording import Parser

COMMANDS = ("train", "evaluate", "predict", "reproduce", "demo", "generate", "pretrain",
            "ensemble", "compare", "augment")
EXIT_ERROR, EXIT_INTERRUPTED = 2, 130


def command_modules() -> dict:
    """name -> module for every subcommand that is installed."""
    modules = {}
    for name in COMMANDS:
        qualified = f"{__package__}.{name}"
        try:
            modules[name] = importlib.import_module(qualified)
        except ModuleNotFoundError as exc:
            # A subcommand written separately (demo) may not have landed yet; skip only
            # its own absence, never a missing dependency inside an existing module.
            if exc.name != qualified:
                raise
    return modules


def build_parser(modules: dict) -> Parser:
    parser = Parser(prog="nablanet",
                    description="Classic neural networks with every backward pass written out.")
    parser.add_argument("--version", action="version", version=f"nablanet {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in modules.values():
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``nablanet ARGS``; return the exit status (0 ok, 2 error, 130 interrupted)."""
    modules = command_modules()
    parser = build_parser(modules)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:               # --help, --version, or a usage error (already printed)
        return exc.code if isinstance(exc.code, int) else EXIT_ERROR
    try:
        return int(modules[args.command].run(args) or 0)
    except NablanetError as exc:
        return _fail(str(exc))
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        return _fail(f"{where}{exc.strerror or exc}")
    except MemoryError as exc:          # e.g. a typo'd width: --hidden 100000000
        return _fail(f"out of memory: {exc or 'an allocation failed'}")
    except KeyboardInterrupt:
        print("nablanet: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _fail(message: str) -> int:
    # One line: a multi-line message (a nested cause) is joined rather than cut.
    print(f"nablanet: error: {' '.join(message.splitlines())}", file=sys.stderr)
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
