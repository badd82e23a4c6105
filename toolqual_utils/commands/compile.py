"""``toolqual compile``: build the compiled checks (mypyc), or say whether this installation runs them."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InputError, ToolqualError

HELP = "compile the checks and heuristics with mypyc (about a quarter less CPU for `check`), or show --status"
DESCRIPTION = """\
Compiles the checks, the heuristics, the verdict rows and the strict reader to C extension modules with mypyc
(the compiler that comes with mypy), from the same source. `check` and `load` then need about a quarter less
CPU; the tables are the same.

The build goes to toolqual_utils/_compiled/ (or --out / TOOLQUAL_COMPILED_DIR). It is used only while every
source it was compiled from is unchanged; after an edit the pure Python modules run until the next
`toolqual compile`. TOOLQUAL_COMPILED=0 turns it off. Needs mypy and setuptools (both in the dev extras),
a C compiler and Python's C headers; `make compiled` installs the last two on Debian.

  toolqual compile             build, unless the build there is current
  toolqual compile --force     build again
  toolqual compile --status    does this installation run compiled checks, and why (exit 0 when it does)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", action="store_true", help="say whether the compiled checks run, and why")
    parser.add_argument("--force", action="store_true", help="build even when the build there is current")
    parser.add_argument("--out", type=Path, default=None,
                        help="the build's folder (default: TOOLQUAL_COMPILED_DIR, else toolqual_utils/_compiled)")
    parser.add_argument("--jobs", type=int, default=None, help="compiler processes (default: one per CPU)")
    parser.add_argument("--log", type=Path, default=None, help="also write the compiler's whole output here")


def run(args: argparse.Namespace) -> int:
    from .. import compiled

    if args.status:
        current = compiled.status()
        print(f"{current.label}: {current.reason}")
        return 0 if current.active else 1
    if args.jobs is not None and args.jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {args.jobs}", field="--jobs")
    if args.log is not None and not args.log.resolve().parent.is_dir():
        raise InputError(f"--log {args.log}: its folder {args.log.resolve().parent} does not exist", field="--log")
    directory = (args.out or compiled.default_directory()).resolve()
    current = compiled.read_build(directory)
    if current.active and not args.force:
        print(f"{directory}: up to date ({current.reason})")
        return 0
    print(f"compiling the checks with mypyc into {directory} (a minute or two) ...", flush=True)
    try:
        built = compiled.build(directory, force=True, jobs=args.jobs, log=args.log)
    except compiled.BuildError as exc:
        raise ToolqualError(f"{exc}. Nothing changed: a build that was there stays as it was.") from exc
    print(f"{built.directory}: {built.reason}")
    return 0
