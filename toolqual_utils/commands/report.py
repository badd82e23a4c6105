"""``toolqual report``: execute every notebook and write offline HTML reports plus an index."""
from __future__ import annotations

import argparse
import sys

HELP = "execute every notebook (papermill) and write offline HTML reports + index.html"
DESCRIPTION = """\
Execute notebooks/NN_*.ipynb in order with their default parameters (kernel python3, working
directory = project root) and export each to <out>/NN_name.html with the code hidden. The pages are
self-contained (plotly.js inlined, no CDN). <out>/index.html lists every report with its status and
run time, and beside each link the question the page answers with its headline numbers; executed
notebooks go to <out>/_work/. Exits 1 if any notebook failed (the others and the
index are still written).

Your own data: --data PATH... points every report at your files (any format `toolqual load` reads,
detected from content; files, folders or quoted globs). A report whose data holds no instance fails
with a message naming the files.

A parameters file (YAML) may set parameters for every notebook that declares them, or per notebook:
    max_examples: 3
    "00": {data_glob: "my_data/*.jsonl"}
Secrets never go in parameters: they come from the environment (OPENAI_API_KEY, TOOLQUAL_*).

examples:
  toolqual report                                   # the bundled sample data (what `make reports` runs)
  toolqual report --data my_data/train.jsonl        # your own file
  toolqual report --data my_data/ --only 00,01,02   # a folder, some reports
  toolqual report --figures paper/figures           # also PDF + PNG figures for a paper
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", default=None,
                        help="output folder, relative to the working directory (default: the project's reports/)")
    parser.add_argument("--notebooks", default="notebooks", help="notebook folder (default: notebooks/)")
    parser.add_argument(
        "--only", default=None,
        help="comma-separated notebook numbers or names to render, e.g. 00,01 (default: all)",
    )
    parser.add_argument(
        "--timeout", type=float, default=None, metavar="S",
        help="seconds a single cell may run before the notebook counts as failed (default: no limit)",
    )
    parser.add_argument(
        "--data", nargs="+", default=None, metavar="PATH",
        help="your data: files, folders or quoted globs in any supported format (default: the bundled data/*.jsonl)",
    )
    parser.add_argument("--parameters-file", default=None, metavar="FILE", help="YAML parameters (see above)")
    parser.add_argument(
        "--figures", default=None, metavar="DIR",
        help="also write static figures for papers (PDF and PNG: error rates with intervals, ICE "
             "distributions, the judge-validation matrix, the Table 6 forest plot) into DIR",
    )
    parser.add_argument("--root", default=None, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..notebook import project_root
    from ..report import data_parameters, load_parameters_file, render_reports

    root = Path(args.root).resolve() if args.root else project_root()
    only = args.only.split(",") if args.only else None
    parameters = load_parameters_file(args.parameters_file)
    if args.data:
        parameters = {**parameters, **data_parameters(args.data)}
    out = Path(args.out).resolve() if args.out else root / "reports"
    runs = render_reports(
        root,
        out,
        args.notebooks,
        only=only,
        parameters=parameters,
        timeout=args.timeout,
        progress=lambda message: print(message, file=sys.stderr, flush=True),
        figures_dir=Path(args.figures).resolve() if args.figures else None,
    )
    failed = [r for r in runs if r.status != "ok"]
    print(f"{len(runs) - len(failed)} of {len(runs)} reports rendered; index: {out / 'index.html'}")
    if args.figures:
        figures = Path(args.figures).resolve()
        written = sorted(p.name for p in figures.glob("*.pdf"))
        print(f"{len(written)} static figure(s) (PDF + PNG) in {figures}" + (": " + ", ".join(written) if written else
              " (none: the rendered notebooks had nothing to draw)"))
    if failed:
        print(
            "failed: " + "; ".join(f"{r.name} ({r.error})" for r in failed),
            file=sys.stderr,
        )
        return 1
    return 0
