"""Adam (and AMSGrad), as torch.optim.Adam with L2 weight decay."""
from __future__ import annotations

import math
from typing import Any, Iterable

from ..ops import functions as F
from .optimizer import Optimizer


class Adam(Optimizer):
    def __init__(self, params: Iterable[Any], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False, maximize: bool = False):
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"Invalid Adam hyperparameters: lr={lr}, betas={betas}, eps={eps}, "
                             f"weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad, maximize=maximize))

    @property
    def state_names(self) -> tuple[str, ...]:  # type: ignore[override]
        names = ("exp_avg", "exp_avg_sq")
        return names + ("max_exp_avg_sq",) if any(g["amsgrad"] for g in self.param_groups) else names

    def step_hyper(self, group: dict[str, Any], state: dict[str, Any]) -> dict[str, float]:
        beta1, beta2 = group["betas"]
        step = state["step"]
        return {"beta1": beta1, "beta2": beta2, "eps": group["eps"], "weight_decay": group["weight_decay"],
                "step_size": group["lr"] / (1 - beta1 ** step),
                "bias_correction2_sqrt": math.sqrt(1 - beta2 ** step)}

    def update(self, p, g, state, hyper, group):
        g = self.regularized_gradient(p, g, hyper, group)
        m = state["exp_avg"] + (1 - hyper["beta1"]) * (g - state["exp_avg"])
        v = hyper["beta2"] * state["exp_avg_sq"] + (1 - hyper["beta2"]) * (g * g)
        new_state = {"exp_avg": m, "exp_avg_sq": v}
        if group["amsgrad"]:
            v = new_state["max_exp_avg_sq"] = F.maximum(state["max_exp_avg_sq"], v)
        denom = F.sqrt(v) / hyper["bias_correction2_sqrt"] + hyper["eps"]
        return p - hyper["step_size"] * (m / denom), new_state
