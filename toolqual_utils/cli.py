"""The ``toolqual`` command line.

Each sub-command lives in ``toolqual_utils/commands/<name>.py`` (``-`` in a command name is ``_`` in its
module name: ``train-config`` -> ``train_config.py``) and exposes::

    HELP: str                                   # one line for ``toolqual --help``
    def add_arguments(parser) -> None           # its options
    def run(args) -> int                        # exit status

Errors meant for people (:class:`~toolqual_utils.errors.ToolqualError`) are printed as one paragraph
with a non-zero exit and no traceback. Set ``TOOLQUAL_DEBUG=1`` to see tracebacks of unexpected errors.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import textwrap
from collections.abc import Sequence

from . import __version__
from .errors import ToolqualError

#: Sub-commands in the order ``--help`` lists them (the pipeline order).
COMMANDS = ("load", "check", "judge", "ice", "select", "train-config", "evaluate", "report", "cache", "compile")


def _available_commands(only: str | None = None) -> dict[str, object]:
    """Command modules by name. With ``only``, imports just that one (fast start-up for a run)."""
    names = (only,) if only in COMMANDS else COMMANDS
    return {name: importlib.import_module(f"{__package__}.commands.{name.replace('-', '_')}") for name in names}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="toolqual",
        description="Find the wrong instances in synthetic tool-use training data: "
        "load -> check/judge -> ice -> select -> report; then train-config -> (train, serve) -> evaluate.",
    )
    parser.add_argument("--version", action="version", version=f"toolqual {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _available_commands(only).items():
        sub = subparsers.add_parser(
            name,
            help=getattr(module, "HELP", ""),
            description=getattr(module, "DESCRIPTION", getattr(module, "HELP", "")),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def _say(message: str) -> None:
    paragraph = " ".join(str(message).split())
    # never break inside a path or a command to copy (no breaks at hyphens or within long words)
    print(textwrap.fill(f"toolqual: {paragraph}", width=100, break_on_hyphens=False, break_long_words=False),
          file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Import only the chosen command's module (its dependencies can be heavy); --help imports all.
    chosen = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(chosen)
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except ToolqualError as exc:
        _say(str(exc))
        return exc.exit_code
    except BrokenPipeError:  # the reader went away (`toolqual check ... | head`): not an error of ours
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        _say("interrupted; results written so far are kept (cached model answers are reused on the next run).")
        return 130
    except MemoryError:
        _say("ran out of memory. Split the input into smaller files (each is processed on its own) and run them "
             "one by one; outputs written so far are kept.")
        return 2
    except OSError as exc:  # the machine, not toolqual: permissions, a full disk, a path that is a folder
        where = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        _say(f"cannot read or write{where}: {exc.strerror or exc}. Check the path, its permissions and the free "
             "disk space. Outputs are only replaced once complete, so none was left half-written.")
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI never shows a bare traceback
        if os.environ.get("TOOLQUAL_DEBUG"):
            raise
        _say(
            f"unexpected error ({type(exc).__name__}: {exc}). This is a bug in toolqual, not in your data; "
            "rerun with TOOLQUAL_DEBUG=1 to see the traceback and report it."
        )
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
