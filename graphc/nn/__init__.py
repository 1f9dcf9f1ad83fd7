"""graphc.nn: PyTorch's module API (Module, Parameter, containers, layers, losses, init, functional)."""
from . import functional, init
from .conv import Conv1d, Conv2d
from .containers import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .module import Module, RemovableHandle
from .modules import Flatten, Identity, Linear, Unflatten
from .parameter import Parameter
from .pooling import (AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, AvgPool1d,
                      AvgPool2d, MaxPool1d, MaxPool2d)
from .losses import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss, L1Loss, MSELoss,
                     NLLLoss, SmoothL1Loss)
from .activation import (ELU, GELU, Hardsigmoid, Hardswish, Hardtanh, LeakyReLU, LogSoftmax, Mish, PReLU, ReLU,
                         ReLU6, SiLU, Sigmoid, Softmax, Softplus, Tanh)
from .dropout import Dropout, Dropout2d
from .sparse import Embedding
from .upsampling import PixelShuffle, PixelUnshuffle, Upsample
from .normalization import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm

__all__ = sorted(name for name in dir() if not name.startswith("_"))
