"""graphc.nn: PyTorch's module API (Module, Parameter, containers, layers, losses, init, functional)."""
from . import functional, init
from .activation import (ELU, GELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSoftmax, Mish, PReLU, ReLU,
                         ReLU6, Sigmoid, SiLU, Softmax, Softplus, Tanh)
from .containers import ModuleDict, ModuleList, Sequential
from .dropout import Dropout, Dropout2d
from .module import Module, RemovableHandle
from .modules import CrossEntropyLoss, Flatten, Identity, Linear, MSELoss, NLLLoss, Unflatten
from .parameter import Parameter
from .sparse import Embedding
from .upsampling import PixelShuffle, PixelUnshuffle, Upsample

__all__ = ["CrossEntropyLoss", "Dropout", "Dropout2d", "ELU", "Embedding", "Flatten", "GELU", "Hardsigmoid",
           "Hardswish", "Hardtanh", "Identity", "LeakyReLU", "Linear", "LogSoftmax", "MSELoss", "Mish", "Module",
           "ModuleDict", "ModuleList", "NLLLoss", "PReLU", "Parameter", "PixelShuffle", "PixelUnshuffle", "ReLU",
           "ReLU6", "RemovableHandle", "Sequential", "SiLU", "Sigmoid", "Softmax", "Softplus", "Tanh", "Unflatten",
           "Upsample", "functional", "init"]
