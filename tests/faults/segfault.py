"""Dereferences a null pointer: the process dies of SIGSEGV."""
import ctypes


def train(X, y, params, learning_rate, epochs, callback=None):
    ctypes.string_at(0)
