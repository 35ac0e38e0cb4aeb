"""`python -m harness …`: the command line of backprop-parity.

Exit codes: 0 all good; 1 a comparison failed (or a learner's code departs, or could not be
checked); 2 a usage or case-file error, one line naming the option or the file; 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM): every worker stopped, nothing half-written.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from adapters.registry import ENGINES, UnknownEngine, get_engine
from cases.loader import CaseError, case_names, load_case
from cases.model import DTYPES
from harness import options
from harness.fuzz.command import register as register_fuzz
from harness.judge.expectations import DEFAULT_PATH as DEFAULT_EXPECTATIONS
from harness.options import UsageError, positive_number, whole_number
from harness.outcome import RunStatus
from harness.run.runner import DEFAULT_MEMORY_LIMIT_MB, DEFAULT_TIMEOUT, Job, run_engine

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143  # 128 + SIGINT, 128 + SIGTERM, as shells report


class Terminated(BaseException):
    """SIGTERM (a CI cancel), raised in the main thread so every `finally` runs."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the option (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"error: {message} (see: {self.prog} --help)\n")


def _engine_help() -> str:
    return "; ".join(f"{name}: {spec.summary}" for name, spec in ENGINES.items())


def _limits(command: argparse.ArgumentParser) -> None:
    command.add_argument("--timeout", type=positive_number, default=DEFAULT_TIMEOUT,
                         metavar="SECONDS", help="give up on one engine run after this long "
                         f"(default: {DEFAULT_TIMEOUT:g})")
    command.add_argument("--memory-limit", type=positive_number, default=DEFAULT_MEMORY_LIMIT_MB,
                         metavar="MB", help="stop a run whose worker process (with everything it "
                         f"started) uses more memory than this (default: "
                         f"{DEFAULT_MEMORY_LIMIT_MB:g})")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m harness",
        description="backprop-parity: train one network on many engines from identical inputs "
                    "and prove they agree.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=OneLineParser)
    known = ", ".join(case_names())

    run = commands.add_parser(
        "run", help="train one case on one engine and print its losses and final parameters",
        description="Train one case on one engine (in its own process) and print the per-epoch "
                    "losses and the final parameters in the canonical layout (W{l} is "
                    "(inputs, units)).")
    run.add_argument("--case", required=True, metavar="NAME_OR_PATH",
                     help=f"a case in cases/ ({known}) or a path to a .toml file")
    run.add_argument("--engine", default="reference", metavar="NAME",
                     help=f"the engine to train with (default: reference). {_engine_help()}")
    run.add_argument("--dtype", choices=DTYPES, default=None,
                     help="precision of the run (default: the case's training.dtype)")
    run.add_argument("--record-steps", action="store_true",
                     help="also record the parameters and gradients after every step "
                          "(prints the per-step losses)")
    _limits(run)
    run.set_defaults(handler=cmd_run)

    comp = commands.add_parser(
        "compare", help="run cases x engines x dtypes, judge parity, write the parity report",
        description="Train every case on every engine in both dtypes (each engine in its own "
                    "warm worker process, in parallel), compare each with the reference at the "
                    "same dtype, and write parity.md, parity.html, parity.json, parity.csv and "
                    "one PNG per case. Exit code 0 when every comparison passes or is listed in "
                    "the expected-failures file, 1 otherwise, 2 for usage or case-file errors, "
                    "130/143 when interrupted or terminated.")
    comp.add_argument("--case", nargs="+", action="extend", metavar="NAME_OR_PATH",
                      help=f"cases to run (default: every case in cases/: {known})")
    comp.add_argument("--engine", nargs="+", action="extend", metavar="NAME",
                      help="engines to compare with the reference (default: every installed "
                           f"engine). {_engine_help()}")
    comp.add_argument("--dtype", nargs="+", action="extend", choices=DTYPES, metavar="DTYPE",
                      help="float64 and/or float32 (default: both)")
    comp.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                      help="where the report goes (default: reports/); made if missing, locked "
                           "while the run writes into it")
    comp.add_argument("--record-steps", action="store_true",
                      help="record every step's parameters, so a failure names the first step, "
                           "layer and parameter where two runs part")
    comp.add_argument("--probe-step", type=whole_number(1), default=None, metavar="N",
                      help="also run step N alone on every engine from the reference's "
                           "parameters before it and compare every stage (layer by layer, the "
                           "loss, the gradients, the update); failing comparisons are probed "
                           "at their first failing step anyway")
    comp.add_argument("--expected-failures", type=Path, default=None, metavar="FILE",
                      help="comparisons expected to fail, one per line with a reason "
                           "(default: cases/expected-failures.txt)")
    comp.add_argument("--jobs", type=whole_number(1), default=None, metavar="N",
                      help="runs at once (default: the number of cores)")
    _limits(comp)
    options.add_ci_options(comp)  # --quiet, --junit FILE
    comp.set_defaults(handler=cmd_compare)
    register_fuzz(commands, comp)  # `fuzz`, and `--ray` for compare

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
    chk.add_argument("--case", nargs="+", action="extend", metavar="NAME_OR_PATH",
                     help="cases to check on (default: regression)")
    chk.add_argument("--dtype", choices=DTYPES, default="float64",
                     help="precision (default: float64, the tight check)")
    chk.add_argument("--no-asymmetric", action="store_true",
                     help="do not add the seeded asymmetric start for symmetric cases")
    _limits(chk)
    options.add_ci_options(chk)
    chk.set_defaults(handler=cmd_check)

    bench = commands.add_parser(
        "bench", help="measure every engine against a bare loop in its framework",
        description="Time start-up and steps/s of every installed engine next to a bare loop in "
                    "its framework (rounds of the two back to back; medians, min-max), the "
                    "default compare with warm workers against one process per run, and a warm "
                    "worker's peak memory after 5 and 50 runs. Writes DIR/bench.{json,md}.")
    bench.add_argument("--out", type=Path, default=Path("reports"), metavar="DIR",
                       help="where bench.json and bench.md go (default: reports/)")
    bench.add_argument("--repeat", type=whole_number(1), default=3, metavar="N",
                       help="runs of the default compare, warm and a process per run (default: 3)")
    bench.add_argument("--engine-repeat", type=whole_number(1), default=5, metavar="N",
                       help="rounds of each engine and its bare loop, back to back (default: 5)")
    bench.add_argument("--engine", nargs="+", action="extend", metavar="NAME",
                       help="engines to measure (default: every installed engine)")
    bench.add_argument("--quick", action="store_true",
                       help="a tiny run that only checks the bench works (one of each, short)")
    bench.set_defaults(handler=cmd_bench)

    listing = commands.add_parser("list", help="list the cases and engines, and which are "
                                  "installed",
                                  description="List the shipped cases and the known engines.")
    listing.set_defaults(handler=cmd_list)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def terminate(signum: int, frame: object) -> None:
        raise Terminated

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        return args.handler(args)
    except (CaseError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except UnknownEngine as exc:
        print(f"error: --engine: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted: every worker stopped; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("terminated: every worker stopped; nothing was written", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_run(args: argparse.Namespace) -> int:
    from harness.terminal import format_run

    spec = get_engine(options.learner_file("--engine", args.engine))
    case = load_case(args.case)
    dtype = args.dtype or case.dtype
    result = run_engine(Job(spec.name, case, dtype, args.record_steps, spec=spec),
                        timeout=args.timeout, memory_limit_mb=args.memory_limit)
    if result.status != RunStatus.OK:
        print(f"{result.job.label}: {result.status}: {result.message}", file=sys.stderr)
        return EXIT_FAIL
    print(format_run(result))
    return EXIT_OK


def cmd_compare(args: argparse.Namespace) -> int:
    from harness import ci
    from harness.compare import run_compare
    from harness.judge.expectations import load_expectations
    from harness.report import write_report
    from harness.run.matrix import installed_engines
    from harness.terminal import format_summary

    if importlib.util.find_spec("matplotlib") is None:
        raise UsageError("", "the report's plots need matplotlib: "
                         "pip install 'backprop-parity[report]'")
    # Everything is checked before the first engine starts: nothing is lost to a bad option.
    engines = options.no_repeats("--engine", args.engine or installed_engines())
    for name in engines:
        get_engine(options.learner_file("--engine", name))
    cases = options.distinct_cases([load_case(c) for c in options.no_repeats(
        "--case", args.case or case_names())])
    dtypes = options.no_repeats("--dtype", args.dtype or list(DTYPES[::-1]))
    if args.probe_step is not None and args.probe_step > max(c.steps for c in cases):
        raise UsageError("--probe-step", f"{args.probe_step} is past the last step of every "
                         f"case selected (the longest has {max(c.steps for c in cases)})")
    given = args.expected_failures is not None
    path = options.expectations_file(args.expected_failures or DEFAULT_EXPECTATIONS, given)
    expectations = load_expectations(path) if path is not None else []
    out = options.output_folder(args.out)
    with options.locked(out):
        with ci.Progress.for_matrix(cases, engines, dtypes, args.quiet) as progress:
            run = run_compare(cases, engines, dtypes, record_steps=args.record_steps,
                              expectations=expectations, workers=args.jobs,
                              timeout=args.timeout, memory_limit_mb=args.memory_limit,
                              on_done=progress.advance, probe_step=args.probe_step)
        # Written into a staging folder beside the report, then moved in file by file.
        staging = Path(tempfile.mkdtemp(prefix=".bpp-report-", dir=out))
        try:
            paths = options.publish(write_report(run, staging), staging, out)
        finally:
            import shutil

            shutil.rmtree(staging, ignore_errors=True)
    ci.compare_junit(args, run)
    print(format_summary(run))
    print(f"\nreport: {paths['md']} (also parity.html, parity.json, parity.csv and plots in "
          f"{out}/)")
    return EXIT_OK if run.ok else EXIT_FAIL


def cmd_check(args: argparse.Namespace) -> int:
    from harness import ci

    get_engine(options.learner_file("TARGET", args.target))
    cases = [load_case(c) for c in options.no_repeats("--case", args.case or ["regression"])]
    diagnoses, failed = ci.check_runs(args, cases)  # progress shown, --junit written
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

    engines = options.no_repeats("--engine", args.engine) if args.engine else None
    for name in engines or []:
        get_engine(name)
    out = options.output_folder(args.out)
    with options.locked(out):
        run_bench(out, args.quick, args.repeat, args.engine_repeat, engines,
                  log=lambda text: print(f"bench: {text}", file=sys.stderr, flush=True))
    print((out / "bench.md").read_text())
    print(f"written: {out / 'bench.json'} and {out / 'bench.md'}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    print("cases:")
    for name in case_names():
        try:
            case = load_case(name)
            print(f"  {name:22} {case.network}, {case.loss}, {case.optimizer.label}, "
                  f"{case.epochs} epochs")
        except CaseError as exc:
            print(f"  {name:22} INVALID: {exc}")
    print("engines:")
    for name, spec in ENGINES.items():
        missing = spec.missing()
        state = f"not installed ({spec.install})" if missing else "installed"
        print(f"  {name:16} {state}: {spec.summary}")
    return EXIT_OK
