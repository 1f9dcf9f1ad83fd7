"""RMSprop with momentum and the centered variant, as torch.optim.RMSprop."""
from __future__ import annotations

from typing import Any, Iterable

from ..ops import functions as F
from .optimizer import Optimizer, check_nonnegative


class RMSprop(Optimizer):
    def __init__(self, params: Iterable[Any], lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False, *,
                 maximize: bool = False):
        check_nonnegative(lr=lr, eps=eps, momentum=momentum, weight_decay=weight_decay, alpha=alpha)
        super().__init__(params, dict(lr=lr, momentum=momentum, alpha=alpha, eps=eps, centered=centered,
                                      weight_decay=weight_decay, maximize=maximize))

    def group_state_names(self, group: dict[str, Any]) -> tuple[str, ...]:
        return (("square_avg",) + (("momentum_buffer",) if group["momentum"] > 0 else ())
                + (("grad_avg",) if group["centered"] else ()))

    def step_hyper(self, group: dict[str, Any], state: dict[str, Any]) -> dict[str, float]:
        return {"lr": group["lr"], "alpha": group["alpha"], "eps": group["eps"], "momentum": group["momentum"],
                "weight_decay": group["weight_decay"]}

    def update(self, p, g, state, hyper, group):
        g = self.regularized_gradient(p, g, hyper, group)
        square_avg = hyper["alpha"] * state["square_avg"] + (1 - hyper["alpha"]) * (g * g)
        new_state = {"square_avg": square_avg}
        if group["centered"]:  # the variance around the running mean of the gradient
            grad_avg = new_state["grad_avg"] = state["grad_avg"] + (1 - hyper["alpha"]) * (g - state["grad_avg"])
            avg = F.sqrt(square_avg - grad_avg * grad_avg) + hyper["eps"]
        else:
            avg = F.sqrt(square_avg) + hyper["eps"]
        if group["momentum"] > 0:
            buf = new_state["momentum_buffer"] = hyper["momentum"] * state["momentum_buffer"] + g / avg
            return p - hyper["lr"] * buf, new_state
        return p - hyper["lr"] * (g / avg), new_state
