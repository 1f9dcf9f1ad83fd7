"""Optimizers whose update rules serve eager steps and compiled train steps alike."""
from .adam import Adam
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Adam", "Optimizer", "SGD"]
