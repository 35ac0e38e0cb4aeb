"""Stage 3: traces -> verdicts: one closeness rule, the comparison, expected failures, findings."""
