"""The update rules, with Keras 3's formulas: SGD, RMSprop, Adam, AdamW, Adagrad, Adadelta,
Adamax, Nadam, Lion (each a subclass of minidl.optimizers.base.Optimizer).

The rules are written with in-place ufuncs (``out=``) on one shared scratch buffer: the optimizer
step is on the hot path of every training loop, and temporaries the size of a weight matrix cost
as much as the arithmetic (the ``mlp_step`` record of ``benchmarks/engine.py`` times the
optimizer part of a step on its own).
"""
from __future__ import annotations

import math

from minidl.backend import get_array_module
from minidl.optimizers.base import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent, with optional (Nesterov) momentum, as Keras 3:

        without momentum:  w ← w - lr·g
        with momentum μ:   m ← μ·m - lr·g;  w ← w + m                (m starts at 0)
        Nesterov:          m ← μ·m - lr·g;  w ← w + μ·m - lr·g
    """

    def __init__(self, learning_rate=0.01, momentum: float = 0.0, nesterov: bool = False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if not 0 <= momentum <= 1:
            raise ValueError(f"SGD: momentum must be in [0, 1], got {momentum}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def update_step(self, gradient, param, learning_rate):
        xp = get_array_module(param.data)
        w = param.data
        step = self.scratch(w)
        xp.multiply(gradient, learning_rate, out=step)                 # lr·g
        if not self.momentum:
            w -= step
            return
        m = self.slot(param, "momentum")
        m *= self.momentum
        m -= step                                                      # m = μ·m - lr·g
        if self.nesterov:
            xp.multiply(m, self.momentum, out=step)  # reuse: lr·g is recomputed below
            w += step
            xp.multiply(gradient, learning_rate, out=step)
            w -= step
        else:
            w += m

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum, "nesterov": self.nesterov}


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e), as Keras 3:

        v ← ρ·v + (1-ρ)·g²
        centered:  ḡ ← ρ·ḡ + (1-ρ)·g;  d = v - ḡ² + ε;  else d = v + ε
        Δ = lr·g / √d
        with momentum μ:  m ← μ·m + Δ;  w ← w - m;   else  w ← w - Δ
    """

    def __init__(self, learning_rate=0.001, rho: float = 0.9, momentum: float = 0.0,
                 epsilon: float = 1e-7, centered: bool = False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho = float(rho)
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.centered = bool(centered)

    def update_step(self, gradient, param, learning_rate):
        xp = get_array_module(param.data)
        w = param.data
        rho = self.rho
        v = self.slot(param, "velocity")
        work = self.scratch(w)
        v *= rho
        xp.multiply(gradient, gradient, out=work)
        work *= 1 - rho
        v += work                                                      # v = ρv + (1-ρ)g²
        if self.centered:
            average = self.slot(param, "average_gradient")
            average *= rho
            xp.multiply(gradient, 1 - rho, out=work)
            average += work                                            # ḡ = ρḡ + (1-ρ)g
            xp.multiply(average, average, out=work)
            xp.subtract(v, work, out=work)
            work += self.epsilon                                       # d = v - ḡ² + ε
        else:
            xp.add(v, self.epsilon, out=work)                          # d = v + ε
        xp.sqrt(work, out=work)
        xp.divide(gradient, work, out=work)
        work *= learning_rate                                          # Δ = lr·g/√d
        if self.momentum > 0:
            m = self.slot(param, "momentum")
            m *= self.momentum
            m += work
            w -= m
        else:
            w -= work

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "momentum": self.momentum,
                "epsilon": self.epsilon, "centered": self.centered}


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2014), in Keras 3's form (ε outside the square root, "ε hat"):

        t = iterations + 1
        α = lr · √(1 - β₂ᵗ) / (1 - β₁ᵗ)
        m ← m + (g - m)·(1 - β₁)
        v ← v + (g² - v)·(1 - β₂)
        amsgrad:  v̂ ← max(v̂, v), and v̂ stands for v below
        w ← w - α·m / (√v + ε)
    """

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1 = float(beta_1)
        self.beta_2 = float(beta_2)
        self.epsilon = float(epsilon)
        self.amsgrad = bool(amsgrad)

    def update_step(self, gradient, param, learning_rate):
        xp = get_array_module(param.data)
        w = param.data
        t = self.iterations + 1
        alpha = learning_rate * math.sqrt(1 - self.beta_2 ** t) / (1 - self.beta_1 ** t)
        m = self.slot(param, "momentum")
        v = self.slot(param, "velocity")
        work = self.scratch(w)
        xp.subtract(gradient, m, out=work)
        work *= 1 - self.beta_1
        m += work                                                      # m += (g - m)(1 - β₁)
        xp.multiply(gradient, gradient, out=work)
        work -= v
        work *= 1 - self.beta_2
        v += work                                                      # v += (g² - v)(1 - β₂)
        if self.amsgrad:
            v_hat = self.slot(param, "velocity_hat")
            xp.maximum(v_hat, v, out=v_hat)
            v = v_hat
        xp.sqrt(v, out=work)
        work += self.epsilon
        xp.divide(m, work, out=work)
        work *= alpha
        w -= work                                                      # w -= α·m / (√v + ε)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2,
                "epsilon": self.epsilon, "amsgrad": self.amsgrad}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): before each Adam step,
    w ← w - w · weight_decay · lr. Keras' default weight_decay is 0.004."""

    def __init__(self, learning_rate=0.001, weight_decay: float = 0.004, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, amsgrad: bool = False, **kwargs):
        if weight_decay is None:
            raise ValueError("AdamW: weight_decay must be a float, got None")
        super().__init__(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, weight_decay=weight_decay, **kwargs)


class Adagrad(Optimizer):
    """Adagrad (Duchi et al., 2011), as Keras 3:  a ← a + g²  (a starts at initial_accumulator_value);
    w ← w - lr·g / √(a + ε)."""

    def __init__(self, learning_rate=0.001, initial_accumulator_value: float = 0.1, epsilon: float = 1e-7,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.initial_accumulator_value, self.epsilon = float(initial_accumulator_value), float(epsilon)

    def update_step(self, gradient, param, learning_rate):
        xp = get_array_module(param.data)
        accumulator = self.slot(param, "accumulator", self.initial_accumulator_value)
        work = self.scratch(param.data)
        xp.multiply(gradient, gradient, out=work)
        accumulator += work                                            # a += g²
        xp.add(accumulator, self.epsilon, out=work)
        xp.sqrt(work, out=work)
        xp.divide(gradient, work, out=work)
        work *= learning_rate
        param.data -= work                                             # w -= lr·g/√(a + ε)

    def get_config(self):
        return {**super().get_config(), "initial_accumulator_value": self.initial_accumulator_value,
                "epsilon": self.epsilon}


class Adadelta(Optimizer):
    """Adadelta (Zeiler, 2012), as Keras 3 (with its learning rate, default 0.001):

        a ← ρ·a + (1-ρ)·g²
        Δ = -√(d + ε) / √(a + ε) · g
        d ← ρ·d + (1-ρ)·Δ²
        w ← w + lr·Δ
    """

    def __init__(self, learning_rate=0.001, rho: float = 0.95, epsilon: float = 1e-7, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.rho, self.epsilon = float(rho), float(epsilon)

    def update_step(self, gradient, param, learning_rate):
        xp = get_array_module(param.data)
        rho = self.rho
        accumulated_grad = self.slot(param, "accumulated_grad")
        accumulated_delta = self.slot(param, "accumulated_delta_var")
        accumulated_grad *= rho
        accumulated_grad += (1 - rho) * gradient * gradient
        delta = -xp.sqrt(accumulated_delta + self.epsilon) / xp.sqrt(accumulated_grad + self.epsilon) * gradient
        accumulated_delta *= rho
        accumulated_delta += (1 - rho) * delta * delta
        param.data += learning_rate * delta

    def get_config(self):
        return {**super().get_config(), "rho": self.rho, "epsilon": self.epsilon}


class Adamax(Optimizer):
    """Adamax, Adam's infinity-norm variant (Kingma & Ba, 2014), as Keras 3:

        m ← m + (g - m)·(1 - β₁);   u ← max(β₂·u, |g|)
        w ← w - lr·m / ((1 - β₁ᵗ)·(u + ε)),   t = iterations + 1
    """

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)

    def update_step(self, gradient, param, learning_rate):
        xp = get_array_module(param.data)
        t = self.iterations + 1
        m, u = self.slot(param, "m"), self.slot(param, "u")
        m += (gradient - m) * (1 - self.beta_1)
        xp.maximum(self.beta_2 * u, xp.abs(gradient), out=u)
        param.data -= learning_rate * m / ((1 - self.beta_1 ** t) * (u + self.epsilon))

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Nadam(Optimizer):
    """Adam with Nesterov momentum (Dozat, 2016), as Keras 3, with the momentum schedule
    μ_t = β₁·(1 - ½·0.96ᵗ) and Π_t = μ_1···μ_t (one product for all weights, kept by the optimizer):

        m ← m + (g - m)·(1 - β₁);   v ← v + (g² - v)·(1 - β₂)
        m̂ = μ_{t+1}·m / (1 - Π_t·μ_{t+1}) + (1 - μ_t)·g / (1 - Π_t);   v̂ = v / (1 - β₂ᵗ)
        w ← w - lr·m̂ / (√v̂ + ε),   t = iterations + 1
    """

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999, epsilon: float = 1e-7,
                 **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.u_product = 1.0  # Π_t; advanced once per update, before the weights are

    def momentum_at(self, t: int) -> float:
        """μ_t = β₁·(1 - ½·0.96ᵗ)."""
        return self.beta_1 * (1.0 - 0.5 * 0.96 ** t)

    def _update_all(self, params, grads, lr):
        self.u_product *= self.momentum_at(self.iterations + 1)
        super()._update_all(params, grads, lr)

    def set_state(self, params, iterations, slots, calls=None):
        """As Optimizer.set_state; Π_t is a function of iterations alone, so it is recomputed, with
        the products taken in the order the updates took them (1·μ_1·μ_2···, bit for bit)."""
        super().set_state(params, iterations, slots, calls)
        self.u_product = math.prod((self.momentum_at(t) for t in range(1, self.iterations + 1)), start=1.0)

    def update_step(self, gradient, param, learning_rate):
        xp = get_array_module(param.data)
        t = self.iterations + 1
        u_t, u_next = self.momentum_at(t), self.momentum_at(t + 1)
        m, v = self.slot(param, "momentum"), self.slot(param, "velocity")
        m += (gradient - m) * (1 - self.beta_1)
        v += (gradient * gradient - v) * (1 - self.beta_2)
        m_hat = u_next * m / (1 - self.u_product * u_next) + (1 - u_t) * gradient / (1 - self.u_product)
        v_hat = v / (1 - self.beta_2 ** t)
        param.data -= m_hat * learning_rate / (xp.sqrt(v_hat) + self.epsilon)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon}


class Lion(Optimizer):
    """Lion (Chen et al., 2023), as Keras 3: the step is the sign of an interpolated momentum,

        w ← w - lr·sign(β₁·m + (1 - β₁)·g);   m ← β₂·m + (1 - β₂)·g
    """

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.99, **kwargs):
        super().__init__(learning_rate=learning_rate, **kwargs)
        if not 0 < beta_1 <= 1:
            raise ValueError(f"Lion: beta_1 must be in (0, 1], got {beta_1!r}")
        self.beta_1, self.beta_2 = float(beta_1), float(beta_2)

    def update_step(self, gradient, param, learning_rate):
        xp = get_array_module(param.data)
        m = self.slot(param, "momentum")
        param.data -= learning_rate * xp.sign(m * self.beta_1 + gradient * (1.0 - self.beta_1))
        m *= self.beta_2
        m += gradient * (1.0 - self.beta_2)

    def get_config(self):
        return {**super().get_config(), "beta_1": self.beta_1, "beta_2": self.beta_2}
