"""graphc.nn: PyTorch's module API (Module, Parameter, containers, layers, losses, init, functional)."""
from . import functional, init
from .conv import Conv1d, Conv2d
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .module import Module, RemovableHandle
from .modules import Flatten, Identity, Linear, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .parameter import Parameter
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AvgPool1d,
                      AvgPool2d, MaxPool1d, MaxPool2d)
from .losses import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,
                     NLLLoss, SmoothL1Loss)

__all__ = sorted(name for name in dir() if not name.startswith("_"))
