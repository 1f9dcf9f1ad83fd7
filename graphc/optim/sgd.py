"""SGD with momentum, dampening, Nesterov, weight decay and maximize, as torch.optim.SGD."""
from __future__ import annotations

from typing import Any, Iterable

from .optimizer import Optimizer, check_nonnegative


class SGD(Optimizer):
    saves_step = False  # torch's SGD keeps no step count

    def __init__(self, params: Iterable[Any], lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, *, maximize: bool = False):
        check_nonnegative(lr=lr, momentum=momentum, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay,
                                      nesterov=nesterov, maximize=maximize))

    def group_state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] else ()

    def step_hyper(self, group: dict[str, Any], state: dict[str, Any]) -> dict[str, float]:
        # a new (zero) buffer takes the gradient itself: PyTorch's buf = clone(g)
        grad_scale = 1.0 if "momentum_buffer" in state["fresh"] else 1.0 - group["dampening"]
        return {"lr": group["lr"], "momentum": group["momentum"], "weight_decay": group["weight_decay"],
                "grad_scale": grad_scale}

    def update(self, p, g, state, hyper, group):
        g = self.regularized_gradient(p, g, hyper, group)
        new_state = {}
        if group["momentum"]:
            buf = hyper["momentum"] * state["momentum_buffer"] + hyper["grad_scale"] * g
            new_state["momentum_buffer"] = buf
            g = g + hyper["momentum"] * buf if group["nesterov"] else buf
        return p - hyper["lr"] * g, new_state
