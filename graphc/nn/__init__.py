"""graphc.nn: PyTorch's module API (Module, Parameter, containers, layers, losses, init, functional)."""
from . import functional, init
from .conv import Conv1d, Conv2d
from .containers import ModuleDict, ModuleList, Sequential
from .module import Module, RemovableHandle
from .modules import (CrossEntropyLoss, Flatten, Identity, Linear, LogSoftmax, MSELoss, NLLLoss, ReLU, Sigmoid,
                      Softmax, Tanh)
from .parameter import Parameter
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AvgPool1d,
                      AvgPool2d, MaxPool1d, MaxPool2d)

__all__ = ["AdaptiveAvgPool1d", "AdaptiveAvgPool2d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AvgPool1d",
           "AvgPool2d", "Conv1d", "Conv2d", "CrossEntropyLoss", "Flatten", "Identity", "Linear", "LogSoftmax",
           "MSELoss", "MaxPool1d", "MaxPool2d", "Module", "ModuleDict", "ModuleList", "NLLLoss", "Parameter",
           "ReLU", "RemovableHandle", "Sequential", "Sigmoid", "Softmax", "Tanh", "functional", "init"]
