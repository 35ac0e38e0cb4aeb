"""`python -m harness fuzz`, and `--ray ADDRESS` for `compare`: registered on the command line
by `register` (one call in harness.cli), so that the command line's own module stays small."""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib.util
import re
import secrets
import sys
from collections.abc import Callable
from pathlib import Path

from adapters.registry import ENGINES, get_engine
from cases.model import DTYPES
from harness import options
from harness.options import UsageError, positive_number, whole_number
from harness.run import ray_executor
from harness.run.runner import DEFAULT_MEMORY_LIMIT_MB

DEFAULT_OUT = Path("fuzz")
DEFAULT_BUDGET = 600.0
# Not drawn against by default: the seed notebook's engine is not textbook SGD on purpose (its
# quirks are known and listed), and applies to 2-2-1 batch-1 cases only.
SKIPPED = ("seed-notebook",)
RAY_HELP = ("run every (case, engine, dtype) as a Ray task, each starting the same isolated "
            "worker process as a local run: 'local' starts a Ray instance on this machine and "
            "stops it at the end; any other value is a running cluster's address (needs "
            "pip install 'backprop-parity[ray]')")


def duration(text: str) -> float:
    """argparse type: '10m', '90s', '1h' or seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not match or float(match.group(1)) <= 0:
        raise argparse.ArgumentTypeError(f"must be a duration such as 10m, 90s or 600, got "
                                         f"{text!r}")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[match.group(2)]


duration.__name__ = "duration"


def register(commands: argparse._SubParsersAction, compare: argparse.ArgumentParser) -> None:
    """Add `--ray` to `compare`, and the `fuzz` command."""
    compare.add_argument("--ray", metavar="ADDRESS", default=None, help=RAY_HELP)
    compare.set_defaults(handler=functools.partial(_on_ray, compare.get_default("handler")))
    fuzz = commands.add_parser(
        "fuzz", help="draw random cases, run them on every engine, shrink and classify failures",
        description="Draw random small cases with hypothesis (depth 1-5, widths 1-16, every "
                    "activation, every loss that fits, with and without biases, log-uniform "
                    "learning rates, short last batches, shuffled order, constant and random "
                    "initial weights, both dtypes, inputs from tiny to saturating), run each on "
                    "every engine and judge it as compare does. A failing comparison with a new "
                    "cause is shrunk to a minimal case in OUT/found/ and classified by the "
                    "convention auditor and the staged probe. Writes OUT/fuzz.md and "
                    "OUT/fuzz.json. Exit code 0 when every finding is explained by a named "
                    "convention, 1 when one is not (or an engine errs), 2 for usage errors.")
    stop = fuzz.add_mutually_exclusive_group()
    stop.add_argument("--budget", type=duration, default=None, metavar="DURATION",
                      help="stop drawing after this long, e.g. 10m (default: 10m)")
    stop.add_argument("--cases", type=whole_number(1), default=None, metavar="N",
                      help="stop after N cases (a campaign that replays exactly)")
    fuzz.add_argument("--seed", type=whole_number(0), default=None, metavar="S",
                      help="the seed of the draw (default: a random one, written in the report)")
    fuzz.add_argument("--engine", nargs="+", action="extend", metavar="NAME",
                      help="engines to compare with the reference (default: every installed "
                           f"engine but {', '.join(SKIPPED)})")
    fuzz.add_argument("--dtype", nargs="+", action="extend", choices=DTYPES, metavar="DTYPE",
                      help="dtypes to draw from (default: both)")
    fuzz.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                      help="where the report and found/ go (default: fuzz/)")
    fuzz.add_argument("--batch", type=whole_number(1), default=8, metavar="N",
                      help="cases run at once (default: 8)")
    fuzz.add_argument("--shrink-limit", type=whole_number(1), default=50, metavar="N",
                      help="runs at most to shrink one finding (default: 50)")
    fuzz.add_argument("--jobs", type=whole_number(1), default=None, metavar="N",
                      help="runs at once (default: the number of cores)")
    fuzz.add_argument("--timeout", type=positive_number, default=120.0, metavar="SECONDS",
                      help="give up on one engine run after this long (default: 120)")
    fuzz.add_argument("--memory-limit", type=positive_number, default=DEFAULT_MEMORY_LIMIT_MB,
                      metavar="MB", help="stop a run whose worker uses more memory than this "
                      f"(default: {DEFAULT_MEMORY_LIMIT_MB:g})")
    fuzz.add_argument("--ray", metavar="ADDRESS", default=None, help=RAY_HELP)
    fuzz.add_argument("--quiet", action="store_true", help="no progress lines")
    fuzz.set_defaults(handler=cmd_fuzz)


@contextlib.contextmanager
def _ray_errors():
    try:
        yield
    except ray_executor.RayUnavailable as exc:
        raise UsageError("--ray", str(exc)) from None


def _on_ray(handler: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """compare, on Ray when `--ray` is given."""
    if args.ray is None:
        return handler(args)
    with _ray_errors(), ray_executor.using(args.ray, args.memory_limit, args.jobs):
        return handler(args)


def default_engines() -> list[str]:
    return [name for name, spec in ENGINES.items() if name not in SKIPPED and not spec.missing()]


def cmd_fuzz(args: argparse.Namespace) -> int:
    from harness.fuzz.campaign import Campaign, Settings
    from harness.fuzz.report import summary, write
    from harness.run.pool import WorkerPool

    if importlib.util.find_spec("hypothesis") is None:
        raise UsageError("", "fuzz draws its cases with hypothesis: "
                         "pip install 'backprop-parity[test]'")
    engines = options.no_repeats("--engine", args.engine or default_engines())
    for name in engines:
        get_engine(options.learner_file("--engine", name))
    dtypes = tuple(options.no_repeats("--dtype", args.dtype or list(DTYPES)))
    budget = args.budget if args.budget is not None or args.cases else DEFAULT_BUDGET
    settings = Settings(seed=secrets.randbelow(2**32) if args.seed is None else args.seed,
                        engines=engines, dtypes=dtypes, cases=args.cases, budget=budget,
                        out=args.out, batch=args.batch, workers=args.jobs,
                        timeout=args.timeout, shrink_limit=args.shrink_limit)
    out = options.output_folder(args.out)
    with options.locked(out):
        for old in (out / "found").glob("*.toml"):  # the findings of an earlier campaign
            old.unlink()
        with _ray_errors():
            pool = (ray_executor.RayPool(args.ray, args.memory_limit, cpus=args.jobs)
                    if args.ray else WorkerPool(args.memory_limit))
        log = (lambda text: None) if args.quiet else (
            lambda text: print(f"fuzz: {text}", file=sys.stderr, flush=True))
        try:
            result = Campaign(settings, pool, log).run()
        finally:
            pool.close()
        paths = write(result, out)
    totals = summary(result)
    print(f"seed {settings.seed}: {totals['cases']} cases, {totals['comparisons']} comparisons "
          f"({totals['passes']} pass), {totals['findings']} findings in "
          f"{result.seconds:,.0f} s ({totals['cases_per_minute']:.1f} cases a minute)")
    for finding in result.findings:
        print(f"  {finding.label} [{', '.join(finding.engines)}; in {len(finding.cases)} "
              f"cases]: {finding.path}")
    print(f"report: {paths['md']} and {paths['json']}")
    explained = all(f.cause.kind == "explained" for f in result.findings)
    return 0 if explained else 1
