"""graphc.nn: PyTorch's module API (Module, Parameter, containers, layers, losses, init, functional)."""
from . import functional, init
from .containers import ModuleDict, ModuleList, Sequential
from .module import Module, RemovableHandle
from .modules import (CrossEntropyLoss, Flatten, Identity, Linear, LogSoftmax, MSELoss, NLLLoss, ReLU, Sigmoid,
                      Softmax, Tanh)
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from .parameter import Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "CrossEntropyLoss", "Flatten", "GroupNorm", "Identity", "LayerNorm", "Linear", "LogSoftmax", "MSELoss", "Module", "ModuleDict",
           "ModuleList", "NLLLoss", "Parameter", "ReLU", "RemovableHandle", "Sequential", "Sigmoid", "Softmax",
           "Tanh", "functional", "init"]
