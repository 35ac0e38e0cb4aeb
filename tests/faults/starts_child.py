"""Starts a child process that would outlive it, then hangs: the timeout must end both. The
child's command line carries a marker (MARKER) that the test looks for among live processes."""
import subprocess
import sys
import time

MARKER = "bpp-fault-child-4f1c"


def train(X, y, params, learning_rate, epochs, callback=None):
    subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(600)  # {MARKER}"])
    while True:
        time.sleep(0.05)
