"""backprop-parity: run one case on many engines and prove they train alike."""
