"""graphc.nn: PyTorch's module API (Module, Parameter, containers, layers, losses, init, functional)."""
from . import functional, init
from .containers import ModuleDict, ModuleList, Sequential
from .losses import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss, NLLLoss,
                     SmoothL1Loss)
from .module import Module, RemovableHandle
from .modules import Flatten, Identity, Linear, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .parameter import Parameter

__all__ = ["BCELoss", "BCEWithLogitsLoss", "CrossEntropyLoss", "Flatten", "HuberLoss", "Identity", "KLDivLoss",
           "L1Loss", "Linear", "LogSoftmax", "MSELoss", "Module", "ModuleDict", "ModuleList", "NLLLoss", "Parameter",
           "ReLU", "RemovableHandle", "Sequential", "Sigmoid", "SmoothL1Loss", "Softmax", "Tanh", "functional", "init"]
