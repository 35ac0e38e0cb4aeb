"""Stage 2: requests -> engines, each in its own process -> traces (runner, worker, matrix)."""
