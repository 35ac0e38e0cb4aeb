"""`check`: a learner's own training run next to textbook SGD (or the case's optimizer, replayed
from the same gradients), and the diagnosis of where and how its updates depart (run the
learner, judge every step at the parameter's scale, test hypotheses of known mistakes on the
steps that depart, say it in the learner's words)."""

from harness.check.learner import run_check

__all__ = ["run_check"]
