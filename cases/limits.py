"""Upper bounds on what one case file may ask for, all in one place.

A case file is input: a typo (`epochs = 10000000000`) or a hostile file must give a one-line
`CaseError` naming the limit, at once, instead of a MemoryError, a machine swapping for minutes or
a run that never ends. The loader checks every bound here before anything of that size is
allocated. The bounds are generous for what this harness is for (small networks trained the same
way on several frameworks; the largest shipped case, digits, has 1,797 rows and 2,410
parameters): raise one here, with its reason, if a real case needs more.

The loader reads these as `limits.NAME` at call time, so a test may lower one with monkeypatch.
"""

from __future__ import annotations

# The case file is parsed whole by tomllib, which holds several times its size in Python objects;
# 16 MiB is room for about a million inline rows of a few numbers. Bigger data goes in a CSV.
MAX_CASE_FILE_BYTES = 16 * 2**20

# A CSV is read whole into memory (and decoded) before it is parsed.
MAX_CSV_BYTES = 100 * 2**20

# Rows of data: x is (rows, features) float64, made once and copied into every run request.
MAX_ROWS = 1_000_000

# Columns named by data.features (= network.inputs): one input unit each.
MAX_FEATURES = 4_096

# Values in one data array: x is rows x features and y is rows x outputs (one-hot for
# categorical cross-entropy), each float64, so at most 160 MB each.
MAX_DATA_VALUES = 20_000_000

# The network: every engine builds it, and the reference keeps per-layer activations per batch.
MAX_LAYERS = 64
MAX_UNITS = 4_096  # per layer
MAX_PARAMETERS = 1_000_000  # weights and biases together: every engine keeps several copies

# Steps = epochs x steps per epoch: each engine runs them all, and a run that records steps keeps
# the loss (and optionally the parameters) of each one.
MAX_STEPS = 10_000_000

# Epochs x rows: harness.contract.request.data_order builds an (epochs, rows) int64 array of row
# indices (160 MB at this bound) that is pickled into every engine's process.
MAX_ORDER_ENTRIES = 20_000_000

# Seeds. numpy's `default_rng` would take any non-negative integer, but a seed is a number a user
# copies between tools: 64 bits is what every other generator takes. The legacy generator
# (`np.random.seed` / RandomState) only takes 0..2**32 - 1 and raises ValueError beyond it.
MAX_SEED = 2**64 - 1
MAX_LEGACY_SEED = 2**32 - 1
