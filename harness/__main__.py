"""`python -m harness`: Ctrl-C or SIGTERM while the command line is still importing ends as
quietly as during a run (cli.main handles those): one line, exit code 130 or 143."""

import signal
import sys


def _terminated_early(signum: int, frame: object) -> None:
    print("terminated: nothing was started", file=sys.stderr)
    sys.exit(143)


signal.signal(signal.SIGTERM, _terminated_early)
try:
    from harness.cli import main
except KeyboardInterrupt:
    print("interrupted: nothing was started", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
