"""The from-scratch NumPy backpropagation that every engine is compared against."""

from reference.mlp import backward, forward, loss_and_gradients, train

__all__ = ["backward", "forward", "loss_and_gradients", "train"]
