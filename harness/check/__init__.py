"""`check`: a learner's own training run next to textbook SGD, and the diagnosis of where and how
its updates depart (run the learner, relate its updates, say it in words)."""

from harness.check.learner import run_check

__all__ = ["run_check"]
