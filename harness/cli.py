"""`python -m harness …`: the command line of backprop-parity."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from adapters.registry import ENGINES, UnknownEngine, get_engine
from cases.loader import CaseError, case_names, load_case
from cases.model import DTYPES
from harness.judge.expectations import DEFAULT_PATH as DEFAULT_EXPECTATIONS
from harness.outcome import QUIET, Outcome, RunStatus
from harness.run.runner import DEFAULT_TIMEOUT, Job, RunResult, run_engine

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _engine_help() -> str:
    return "; ".join(f"{name}: {spec.summary}" for name, spec in ENGINES.items())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m harness",
        description="backprop-parity: train one network on many engines from identical inputs "
                    "and prove they agree.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run", help="train one case on one engine and print its losses and final parameters",
        description="Train one case on one engine (in its own process) and print the per-epoch "
                    "losses and the final parameters in the canonical layout (W{l} is "
                    "(inputs, units)).")
    run.add_argument("--case", required=True, metavar="NAME_OR_PATH",
                     help=f"a case in cases/ ({', '.join(case_names())}) or a path to a .toml file")
    run.add_argument("--engine", default="reference", metavar="NAME",
                     help=f"the engine to train with (default: reference). {_engine_help()}")
    run.add_argument("--dtype", choices=DTYPES, default=None,
                     help="precision of the run (default: the case's training.dtype)")
    run.add_argument("--record-steps", action="store_true",
                     help="also record the parameters and gradients after every step "
                          "(prints the per-step losses)")
    run.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                     help=f"give up on the engine after this long (default: {DEFAULT_TIMEOUT:g})")
    run.set_defaults(handler=cmd_run)

    comp = commands.add_parser(
        "compare", help="run cases x engines x dtypes, judge parity, write the parity report",
        description="Train every case on every engine in both dtypes (each run in its own "
                    "process, in parallel), compare each with the reference at the same dtype, "
                    "and write parity.md, parity.html, parity.json, parity.csv and one PNG per "
                    "case. Exit code 0 when every comparison passes or is listed in the "
                    "expected-failures file, 1 otherwise, 2 for usage or case-file errors.")
    comp.add_argument("--case", nargs="+", metavar="NAME_OR_PATH",
                      help="cases to run (default: every case in cases/)")
    comp.add_argument("--engine", nargs="+", metavar="NAME",
                      help="engines to compare with the reference (default: every installed "
                           f"engine). {_engine_help()}")
    comp.add_argument("--dtype", nargs="+", choices=DTYPES, metavar="DTYPE",
                      help="float64 and/or float32 (default: both)")
    comp.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                      help="where the report goes (default: reports/)")
    comp.add_argument("--record-steps", action="store_true",
                      help="record every step's parameters, so a failure names the first step, "
                           "layer and parameter where two runs part")
    comp.add_argument("--expected-failures", type=Path, default=DEFAULT_EXPECTATIONS,
                      metavar="FILE", help="comparisons expected to fail, one per line with a "
                      "reason (default: cases/expected-failures.txt)")
    comp.add_argument("--jobs", type=int, default=None, metavar="N",
                      help="engines run at once (default: the number of cores)")
    comp.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                      help=f"give up on one engine run after this long (default: "
                           f"{DEFAULT_TIMEOUT:g})")
    comp.add_argument("--quiet", action="store_true", help="no progress display")
    comp.set_defaults(handler=cmd_compare)

    chk = commands.add_parser(
        "check", help="check a learner's own backpropagation against textbook SGD",
        description="Run TARGET (an engine name, or a learner's function as "
                    "path/to/file.py:function or package.module:function; see the README for "
                    "its contract) next to the reference from the same start, with per-step "
                    "recording, and say where and why it departs from textbook backpropagation: "
                    "the first epoch, the first step, and at every step which parameter's "
                    "update differs and how. When the case starts with symmetric weights, a "
                    "seeded asymmetric start is checked too. Exit code 0 when it agrees, 1 when "
                    "it departs or fails, 2 for usage or case-file errors.")
    chk.add_argument("target", metavar="TARGET",
                     help="path/to/file.py:function, package.module:function, or an engine name")
    chk.add_argument("--case", nargs="+", default=["regression"], metavar="NAME_OR_PATH",
                     help="cases to check on (default: regression)")
    chk.add_argument("--dtype", choices=DTYPES, default="float64",
                     help="precision (default: float64, the tight check)")
    chk.add_argument("--no-asymmetric", action="store_true",
                     help="do not add the seeded asymmetric start for symmetric cases")
    chk.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                     help=f"give up on one run after this long (default: {DEFAULT_TIMEOUT:g})")
    chk.set_defaults(handler=cmd_check)

    bench = commands.add_parser(
        "bench", help="measure every engine against a bare loop in its framework",
        description="Time start-up and steps/s of every installed engine on regression and "
                    "digits next to a bare hand-written loop in the same framework, the whole "
                    "seed-case compare against the bare loops, and peak memory with per-step "
                    "recording off and on. Writes DIR/bench.json and DIR/bench.md.")
    bench.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                       help="where bench.json and bench.md go (default: reports/)")
    bench.add_argument("--repeat", type=int, default=3, metavar="N",
                       help="runs per figure; the median is reported with min and max "
                            "(default: 3)")
    bench.add_argument("--engine", nargs="+", metavar="NAME",
                       help="engines to measure (default: every installed engine)")
    bench.add_argument("--quick", action="store_true",
                       help="a tiny run that only checks the bench works (one repeat, short)")
    bench.set_defaults(handler=cmd_bench)

    listing = commands.add_parser("list", help="list the cases and engines, and which are "
                                  "installed",
                                  description="List the shipped cases and the known engines.")
    listing.set_defaults(handler=cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except CaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnknownEngine as exc:
        print(f"error: --engine: {exc}", file=sys.stderr)
        return EXIT_USAGE


def cmd_run(args: argparse.Namespace) -> int:
    get_engine(args.engine)
    case = load_case(args.case)
    dtype = args.dtype or case.dtype
    result = run_engine(Job(args.engine, case, dtype, args.record_steps), timeout=args.timeout)
    if result.status != RunStatus.OK:
        print(f"{result.job.label}: {result.status}: {result.message}", file=sys.stderr)
        return EXIT_FAIL
    print(format_run(result))
    return EXIT_OK


def format_run(result: RunResult) -> str:
    import pandas as pd

    trace, case = result.trace, result.job.case
    assert trace is not None
    meta = trace.meta
    observed = meta.get("observed_dtype", "?")
    lines = [
        f"case {case.name}: {case.network}, {case.loss}, lr {case.learning_rate:g}, "
        f"batch {case.batch_size}, {case.epochs} epochs",
        f"engine {result.engine}: {meta.get('framework')} {meta.get('framework_version')}"
        + (f" ({meta['backend']} backend)" if meta.get("backend") else "")
        + f", dtype {result.job.dtype} (observed {observed}), "
        f"{meta.get('steps_per_second', 0):,.0f} steps/s",
    ]
    if observed != result.job.dtype:
        lines.append(f"note: asked for {result.job.dtype}, the engine computed in {observed}")
    epochs = pd.DataFrame({"epoch": np.arange(1, case.epochs + 1),
                           "loss": [repr(float(v)) for v in trace.epoch_losses]})
    lines += ["", epochs.to_string(index=False), "", "final parameters:"]
    with np.printoptions(precision=10, suppress=False, linewidth=100):
        for name, value in trace.final_params.items():
            body = np.array2string(value, prefix=f"  {name} ")
            lines.append(f"  {name} {body}")
    if trace.step_params is not None:
        steps = pd.DataFrame({"step": np.arange(1, case.steps + 1),
                              "loss": [repr(float(v)) for v in trace.step_losses]})
        lines += ["", "per-step losses:", steps.to_string(index=False)]
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    from harness.compare import run_compare
    from harness.judge.expectations import load_expectations
    from harness.progress import Progress
    from harness.report import write_report
    from harness.run.matrix import installed_engines

    if importlib.util.find_spec("matplotlib") is None:
        print("error: the report's plots need matplotlib: pip install 'backprop-parity[report]'",
              file=sys.stderr)
        return EXIT_USAGE

    engines = args.engine or [e for e in installed_engines()]
    for name in engines:
        get_engine(name)
    cases = [load_case(c) for c in (args.case or case_names())]
    dtypes = list(dict.fromkeys(args.dtype or DTYPES[::-1]))
    expectations = load_expectations(args.expected_failures)
    total = len(cases) * len(dtypes) * len({"reference", *engines})
    with Progress(total, quiet=args.quiet) as progress:
        run = run_compare(cases, engines, dtypes, record_steps=args.record_steps,
                         expectations=expectations, workers=args.jobs, timeout=args.timeout,
                         on_done=progress.advance)
    paths = write_report(run, args.out)
    print(format_summary(run))
    print(f"\nreport: {paths['md']} (also parity.html, parity.json, parity.csv and plots in "
          f"{args.out}/)")
    return EXIT_OK if run.ok else EXIT_FAIL


def format_summary(run) -> str:
    """What the terminal shows after a compare: one line per comparison, then every failure."""
    lines = []
    for entry in run.entries:
        c = entry.comparison
        final = (f"{float(entry.trace.epoch_losses[-1]):.6g}" if entry.trace is not None
                 else "-")
        lines.append(f"{c.outcome:16} {c.case:16} {c.engine:17} {c.dtype:8} final loss {final:>10}"
                     f"  max rel dev {c.max_deviation:.2e}")
    problems = [e.comparison for e in run.entries if e.comparison.outcome not in QUIET]
    if problems:
        lines.append("")
    for c in problems:
        # an expected failure is known and explained: one line; anything else in full
        lines.append(f"{c.path}: expected fail: {c.expected_failure}"
                     if c.outcome == Outcome.EXPECTED_FAIL else c.report())
    for case, sentences in run.findings.items():
        if sentences:
            lines.append(f"\n{case}:")
            lines += [f"  - {s}" for s in sentences]
    lines += [f"warning: {w}" for w in run.warnings]
    passed = sum(c.ok for c in run.comparisons)
    lines.append(f"\n{passed} of {len(run.comparisons)} comparisons pass or are expected")
    return "\n".join(lines)


def cmd_check(args: argparse.Namespace) -> int:
    from harness.check import run_check

    get_engine(args.target)
    cases = [load_case(c) for c in args.case]
    diagnoses, failed = run_check(args.target, cases, args.dtype, not args.no_asymmetric,
                                  args.timeout)
    for result in failed:
        print(f"{result.job.label}: {result.status}: {result.message}", file=sys.stderr)
    for diagnosis in diagnoses:
        print(diagnosis.text())
        print()
    agrees = not failed and all(d.agrees for d in diagnoses)
    print("verdict: " + ("agrees with textbook backpropagation" if agrees else
                         "departs from textbook backpropagation" if not failed else
                         "could not be checked"))
    return EXIT_OK if agrees else EXIT_FAIL


def cmd_bench(args: argparse.Namespace) -> int:
    from harness.bench import run_bench

    for name in args.engine or []:
        get_engine(name)
    run_bench(args.out, quick=args.quick, repeat=args.repeat, engines=args.engine,
              log=lambda text: print(f"bench: {text}", file=sys.stderr, flush=True))
    print((args.out / "bench.md").read_text())
    print(f"written: {args.out / 'bench.json'} and {args.out / 'bench.md'}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    print("cases:")
    for name in case_names():
        try:
            case = load_case(name)
            print(f"  {name:16} {case.network}, {case.loss}, {case.epochs} epochs")
        except CaseError as exc:
            print(f"  {name:16} INVALID: {exc}")
    print("engines:")
    for name, spec in ENGINES.items():
        missing = spec.missing()
        state = f"not installed ({spec.install})" if missing else "installed"
        print(f"  {name:16} {state}: {spec.summary}")
    return EXIT_OK
