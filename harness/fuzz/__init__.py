"""`python -m harness fuzz`: random cases drawn with hypothesis, run on every engine, judged as
`compare` judges, every failure shrunk to a minimal case and classified.

The flow: `strategy` (hypothesis strategies for whole cases) -> `casefile` (each drawn case
written as a case file and read back by the loader: every drawn case is a valid case file) ->
`campaign` (batches on warm workers or Ray) -> `judging` (compare's judge, then the convention
auditor and the staged probe give each failure its cause) -> `shrink` -> `report`.

Choices, and why:
- Hypothesis draws, with its strategies, seeded by `@seed`: one `@given` run per campaign hands
  the cases over one by one, so the sequence depends on the seed alone and a campaign replays
  (`--seed S --cases N`), locally or on Ray. Its example database is not used: its reuse phase
  would replay earlier campaigns' examples first, and a seed would no longer name a campaign.
  The minimal cases in `OUT/found/` are the campaign's database instead: case files, which
  `compare --case` runs as they are and which can join `cases/`.
- The shrinking is our own greedy shrinker over the case's structure (harness.fuzz.shrink), not
  hypothesis's. A shrink step here costs an engine run (a second or more for Keras), and
  hypothesis's shrinker, made for cheap tests, spends hundreds of them and stops on its own
  time limit (minutes), not on a count; it would also have to own the campaign (a failing
  example ends a `@given` run), and it knows nothing of "a layer less" or "the first eight
  rows", which are one step here. The structural shrinker needs tens of runs, runs its
  candidates in parallel, is bounded by a count (the same result on any machine), and reliably
  reaches a few layers and rows. "Fails the same way" = the same cause: the same engine and the
  same convention set from the auditor, or the same kind of first parting stage from the probe,
  or the same error.
- Optimizers stay at plain SGD: the fuzzer draws backpropagation's conventions first.
"""
