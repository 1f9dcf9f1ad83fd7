"""graphc.nn: PyTorch's module API (Module, Parameter, containers, layers, losses, init, functional)."""
from . import functional, init
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .module import Module, RemovableHandle
from .modules import (CrossEntropyLoss, Flatten, Identity, Linear, LogSoftmax, MSELoss, NLLLoss, ReLU, Sigmoid,
                      Softmax, Tanh)
from .parameter import Parameter

__all__ = ["CrossEntropyLoss", "Flatten", "Identity", "Linear", "LogSoftmax", "MSELoss", "Module", "ModuleDict",
           "ModuleList", "NLLLoss", "Parameter", "ParameterDict", "ParameterList", "ReLU", "RemovableHandle", "Sequential", "Sigmoid", "Softmax",
           "Tanh", "functional", "init"]
