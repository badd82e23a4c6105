"""``toolqual cache``: look after the model-answer cache (check and repair it, adopt answers of old caches)."""
from __future__ import annotations

import argparse

from ..errors import InputError

HELP = "check or repair the model-answer cache, or assign its pre-endpoint answers to an endpoint"
DESCRIPTION = """\
The answer cache (default .toolqual_cache/llm.sqlite) holds every ok model answer, keyed by the endpoint,
the model and the exact request, so reruns and resumed runs pay nothing twice.

  toolqual cache check FILE            sqlite integrity, answers per endpoint and model, damaged answers
  toolqual cache check FILE --repair   also delete the damaged answers (they are asked again next run)
  toolqual cache adopt FILE --base-url URL
                                       assign the answers stored before the endpoint was part of the key
                                       (caches of earlier toolqual versions) to URL, so runs against URL
                                       reuse them; without --base-url they are assigned to OpenAI

check exits 0 when the cache is sound (or was repaired), 1 when it has problems.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="cache_action", metavar="ACTION", required=True)
    check = actions.add_parser("check", help="check the cache file (and --repair it)")
    check.add_argument("file", metavar="FILE", help="the cache file, e.g. .toolqual_cache/llm.sqlite")
    check.add_argument("--repair", action="store_true", help="delete damaged answers")
    adopt = actions.add_parser("adopt", help="assign answers stored before endpoints were recorded to one endpoint")
    adopt.add_argument("file", metavar="FILE", help="the cache file")
    adopt.add_argument("--base-url", help="the endpoint that gave those answers (default: OpenAI)")


def run(args: argparse.Namespace) -> int:
    from ..llm import adopt_cache_answers, cache_endpoint, check_cache

    if args.cache_action == "adopt":
        n = adopt_cache_answers(args.file, args.base_url)
        print(f"{n} answers stored before endpoints were recorded are now answers of {cache_endpoint(args.base_url)}"
              if n else "nothing to adopt: every answer in the cache already names its endpoint")
        return 0
    if args.cache_action != "check":  # pragma: no cover - argparse refuses other actions
        raise InputError(f"unknown cache action {args.cache_action!r}")
    report = check_cache(args.file, repair=args.repair)
    if report.problem:
        print(f"{report.path}: {report.problem}. It cannot be used as an answer cache: run without it (--cache "
              f"none) or start a new one (--cache NEW.sqlite); deleting the file loses the answers it holds.")
        return 1
    print(f"{report.path}: {report.n_answers} answers; sqlite integrity: {report.integrity}")
    for endpoint, models in sorted(report.by_endpoint.items()):
        listed = ", ".join(f"{model} {count}" for model, count in sorted(models.items()))
        print(f"  {endpoint}: {listed}")
    if report.n_legacy:
        print(f"  {report.n_legacy} answers were stored before answers were kept per endpoint; no run reuses them "
              f"until `toolqual cache adopt {report.path} --base-url URL` assigns them to the endpoint that gave them")
    if report.n_malformed:
        if report.n_removed:
            print(f"  removed {report.n_removed} damaged answers (they are asked again on the next run)")
        else:
            print(f"  {report.n_malformed} damaged answers (runs ignore them and ask again); --repair deletes them")
    if report.integrity != "ok":
        print("  the sqlite file itself is damaged: copy what can be read with `sqlite3 FILE .recover | sqlite3 NEW`, "
              "or start a new cache")
    return 0 if report.ok else 1
