"""`python -m harness …`: the command line of backprop-parity."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import numpy as np

from adapters.registry import ENGINES, UnknownEngine, get_engine
from cases.loader import CaseError, case_names, load_case
from cases.model import DTYPES
from harness.runner import DEFAULT_TIMEOUT, OK, Job, RunResult, run_engine

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

    listing = commands.add_parser("list", help="list the cases and engines, and which are installed",
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
    if result.status != OK:
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
