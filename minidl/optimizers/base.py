"""The base optimizer: what every update rule shares (minidl.optimizers.update_rules has the rules).

An optimizer updates parameters from the gradients that ``loss.backward()`` left on them:

    loss.backward()                              # every weight's .grad is filled
    optimizer.apply(model.trainable_weights)     # weights updated in place, .grad set to None

One ``apply`` call is one step, in Keras' order: clip each gradient (``clipnorm``,
``clipvalue`` or ``global_clipnorm``), decay the weights (``var -= var·wd·lr``, decoupled, as
AdamW), then the class's update rule; ``iterations`` counts the steps. Slot variables (moments,
velocities) are created lazily beside each parameter, on its array module (NumPy or CuPy) and in
its dtype, so a float32 model stays float32.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable

from minidl import optimizer_schedules as schedules
from minidl.backend import Array, get_array_module, to_device
from minidl.function import no_grad
from minidl.optimizer_schedules import SCHEDULES, LearningRateSchedule


class Optimizer:
    """Base class: gradient clipping, decoupled weight decay, slots, the step counter.

    Args:
        learning_rate: a float, or a schedule (any callable ``step -> float``, e.g.
            ExponentialDecay) evaluated at ``iterations`` before each step.
        clipnorm: clip each gradient so that its L2 norm is at most this (per variable).
        clipvalue: clip each gradient element to [-clipvalue, clipvalue].
        global_clipnorm: scale all gradients together so that their joint norm is at most this.
        weight_decay: if set, ``var -= var · weight_decay · lr`` before each update.
        use_ema: keep an exponential moving average of each weight after every step (Keras'
            rule: a = w on the first step, then a ← μ·a + (1-μ)·w with μ = ema_momentum).
        ema_momentum: μ, default 0.99.
        ema_overwrite_frequency: if set, every that many steps the weights are replaced by their
            averages; ``finalize_variable_values`` replaces them at the end of training.
        gradient_accumulation_steps: if set to n, the gradients of n consecutive calls are
            summed and one update with their mean is made on every n-th call (the others only
            accumulate). As in Keras, ``iterations`` then counts updates, while a schedule is
            evaluated at the count of calls (``calls``).
        name: a name for the optimizer (default: the class name in lower case).
    Attributes:
        iterations: number of updates made (calls to apply, unless gradients are accumulated).
        calls: number of calls to apply.
        learning_rate: the current learning rate (a float); settable (ReduceLROnPlateau does).
    """

    def __init__(self, learning_rate: float | Callable = 0.001, clipnorm: float | None = None,
                 clipvalue: float | None = None, weight_decay: float | None = None,
                 global_clipnorm: float | None = None, use_ema: bool = False, ema_momentum: float = 0.99,
                 ema_overwrite_frequency: int | None = None, loss_scale_factor=None,
                 gradient_accumulation_steps: int | None = None, name: str | None = None):
        if loss_scale_factor is not None:
            raise NotImplementedError(f"{type(self).__name__}: loss_scale_factor is not supported by minidl")
        if not 0 <= ema_momentum <= 1:
            raise ValueError(f"{type(self).__name__}: ema_momentum must be in [0, 1], got {ema_momentum!r}")
        for arg, value in (("ema_overwrite_frequency", ema_overwrite_frequency),
                           ("gradient_accumulation_steps", gradient_accumulation_steps)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{type(self).__name__}: {arg} must be an int >= 1 or None, got {value!r}")
        given = [n for n, v in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                                ("global_clipnorm", global_clipnorm)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"{type(self).__name__}: only one of clipnorm, clipvalue and "
                             f"global_clipnorm can be set, got {', '.join(given)}")
        for arg, value in (("clipnorm", clipnorm), ("clipvalue", clipvalue),
                           ("global_clipnorm", global_clipnorm), ("weight_decay", weight_decay)):
            if value is not None and not (isinstance(value, (int, float)) and value >= 0):
                raise ValueError(f"{type(self).__name__}: {arg} must be a number >= 0 or None, got {value!r}")
        self._learning_rate = _check_learning_rate(type(self).__name__, learning_rate)
        self.clipnorm = clipnorm
        self.clipvalue = clipvalue
        self.global_clipnorm = global_clipnorm
        self.weight_decay = weight_decay
        self.use_ema, self.ema_momentum = bool(use_ema), float(ema_momentum)
        self.ema_overwrite_frequency = ema_overwrite_frequency
        self.gradient_accumulation_steps = gradient_accumulation_steps
        self.name = name or type(self).__name__.lower()
        self.calls = 0  # Keras' _iterations: every apply call, updating or accumulating
        # id(param) -> (param, {slot name: array}); holding the param keeps its id unique.
        self._slots: dict[int, tuple[Any, dict[str, Array]]] = {}
        self._scratch: dict[tuple, Array] = {}

    # --- learning rate ---------------------------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The learning rate of the next step (a schedule is evaluated at ``iterations``)."""
        return self.current_learning_rate()

    @learning_rate.setter
    def learning_rate(self, value) -> None:
        if isinstance(self._learning_rate, LearningRateSchedule) and not callable(value):
            raise TypeError(f"{type(self).__name__}: this optimizer was created with a learning-rate "
                            f"schedule ({type(self._learning_rate).__name__}), so its learning rate "
                            f"cannot be set to a number; got {value!r}")
        self._learning_rate = _check_learning_rate(type(self).__name__, value)

    def current_learning_rate(self) -> float:
        lr = self._learning_rate
        return float(lr(self.calls)) if callable(lr) else lr

    @property
    def iterations(self) -> int:
        """Updates made: the calls to apply, divided by gradient_accumulation_steps (floored) when set."""
        steps = self.gradient_accumulation_steps
        return self.calls // steps if steps else self.calls

    @iterations.setter
    def iterations(self, value: int) -> None:
        self.calls = int(value) * (self.gradient_accumulation_steps or 1)

    # --- the step --------------------------------------------------------------------------------
    def apply(self, params: Iterable, trainable_variables: Iterable | None = None) -> None:
        """One optimisation step on every parameter (Tensor) whose ``.grad`` is set.

        Each such parameter's ``.data`` is updated in place and its ``.grad`` set to None, so
        the next ``backward()`` starts from zero. Parameters without a gradient are skipped.
        Keras' form ``apply(grads, trainable_variables)`` also works (and leaves ``.grad`` alone).
        """
        if trainable_variables is not None:
            self.apply_gradients(zip(params, trainable_variables))
            return
        pairs = [(p, p.grad) for p in params if p.grad is not None]
        self._apply_pairs(pairs)
        for p, _ in pairs:
            p.grad = None

    def apply_gradients(self, grads_and_vars: Iterable) -> None:
        """Keras' form: ``apply_gradients([(grad_array, param), ...])``; leaves ``.grad`` alone."""
        self._apply_pairs([(p, g) for g, p in grads_and_vars if g is not None])

    def _apply_pairs(self, pairs: list) -> None:
        lr = self.current_learning_rate()
        with no_grad():
            grads = [self._as_param_array(p, g) for p, g in pairs]
            steps = self.gradient_accumulation_steps
            if steps and (self.calls + 1) % steps:   # not an update call: only accumulate
                for p, g in zip((p for p, _ in pairs), grads):
                    self.slot(p, "accumulated_gradient")[...] += g
            else:
                if steps:
                    accumulated = [self.slot(p, "accumulated_gradient") for p, _ in pairs]
                    grads = [(g + a) / steps for g, a in zip(grads, accumulated)]
                    for a in accumulated:
                        a[...] = 0
                self._update_all([p for p, _ in pairs], self._clip(grads), lr)
            if self.use_ema:
                self._update_moving_averages([p for p, _ in pairs])
        self.calls += 1

    def _update_all(self, params: list, grads: list, lr: float) -> None:
        """One update of every parameter: decoupled weight decay, then the class's rule."""
        for p, g in zip(params, grads):
            if self.weight_decay:
                # Decoupled weight decay (Loshchilov & Hutter), before the update as Keras.
                p.data -= p.data * (self.weight_decay * lr)
            self.update_step(g, p, lr)

    def _update_moving_averages(self, params: list) -> None:
        """a ← μ·a + (1-μ)·w (a = w on the very first step); every ema_overwrite_frequency steps w ← a."""
        momentum = self.ema_momentum if self.iterations else 0.0
        overwrite = self.ema_overwrite_frequency and (self.iterations + 1) % self.ema_overwrite_frequency == 0
        for p in params:
            average = self.slot(p, "average")
            average *= momentum
            average += (1 - momentum) * p.data
            if overwrite:
                p.data[...] = average

    def finalize_variable_values(self, params: Iterable) -> None:
        """With use_ema, replace each weight by its moving average (Keras calls this when fit ends)."""
        if not self.use_ema:
            return
        for p in params:
            entry = self._slots.get(id(p))
            if entry is not None and entry[0] is p and "average" in entry[1]:
                p.data[...] = entry[1]["average"]

    def update_step(self, gradient: Array, param, learning_rate: float) -> None:
        """Update ``param.data`` in place from ``gradient`` (an array shaped and typed like it)."""
        raise NotImplementedError

    def _as_param_array(self, param, grad) -> Array:
        if type(grad).__name__ == "Tensor":
            grad = grad.data
        if tuple(grad.shape) != tuple(param.data.shape):
            raise ValueError(f"{type(self).__name__}: gradient of shape {tuple(grad.shape)} for "
                             f"parameter {getattr(param, 'name', None)!r} of shape {tuple(param.data.shape)}")
        if grad.dtype != param.data.dtype:  # Keras casts the gradient to the variable's dtype
            grad = grad.astype(param.data.dtype)
        return grad

    def _clip(self, grads: list) -> list:
        """Keras' clipping; returns new arrays (a grad may be shared between parameters)."""
        if self.clipnorm:
            return [g * (self.clipnorm / max(_l2norm(g), self.clipnorm)) for g in grads]
        if self.global_clipnorm:
            norm = math.sqrt(sum(_l2norm(g) ** 2 for g in grads))
            scale = self.global_clipnorm * min(1.0 / norm if norm else math.inf, 1.0 / self.global_clipnorm)
            return [g * scale for g in grads]
        if self.clipvalue:
            return [get_array_module(g).clip(g, -self.clipvalue, self.clipvalue) for g in grads]
        return grads

    # --- slots -----------------------------------------------------------------------------------
    def slot(self, param, name: str, initial_value: float = 0.0) -> Array:
        """The slot array ``name`` of ``param`` (``initial_value`` everywhere, shaped and typed like
        its data, on first use)."""
        entry = self._slots.get(id(param))
        data = param.data
        if entry is not None and entry[0] is param:
            array = entry[1].get(name)
            # fast path, taken on every step but the first: same array type, same shape
            if array is not None and type(array) is type(data) and array.shape == data.shape:
                return array
        else:
            entry = self._slots[id(param)] = (param, {})
        slots = entry[1]
        array = slots.get(name)
        xp = get_array_module(data)
        if array is None:
            array = slots[name] = xp.full_like(data, initial_value) if initial_value else xp.zeros_like(data)
        elif get_array_module(array) is not xp:  # the model moved device: the slot follows
            array = slots[name] = to_device(array, "gpu" if xp.__name__ == "cupy" else "cpu")
        if array.shape != data.shape:
            raise ValueError(f"{type(self).__name__}: parameter {getattr(param, 'name', None)!r} changed "
                             f"shape from {array.shape} to {data.shape} since the optimizer last saw it")
        return array

    def scratch(self, like: Array) -> Array:
        """A work buffer shaped like ``like``: a view into one buffer shared by all parameters."""
        key = (type(like), like.dtype)
        buffer = self._scratch.get(key)
        if buffer is None or buffer.size < like.size:
            buffer = self._scratch[key] = get_array_module(like).empty(like.size, dtype=like.dtype)
        return buffer[:like.size].reshape(like.shape)

    def reset(self) -> None:
        """Forget the slots (moments) and work buffers; ``iterations`` is kept. Not needed after
        ``model.to(device)``: slots follow their parameter to its device on the next step."""
        self._slots.clear()
        self._scratch.clear()

    def variables(self) -> list:
        """The slot arrays, parameter by parameter, in the order the parameters were first seen."""
        return [a for _, slots in self._slots.values() for a in slots.values()]

    # --- state, for saving and resuming (minidl.saving) ------------------------------------------
    def get_state(self, params: list) -> tuple[int, list[tuple[int, str, Array]]]:
        """(iterations, [(index into ``params``, slot name, slot array), ...]): what a resumed
        run needs to take the next step exactly as an unbroken one; slots of other parameters
        are left out."""
        slots = []
        for index, param in enumerate(params):
            entry = self._slots.get(id(param))
            if entry is not None and entry[0] is param:
                slots.extend((index, name, array) for name, array in entry[1].items())
        return self.iterations, slots

    def set_state(self, params: list, iterations: int, slots: list[tuple[int, str, Array]],
                  calls: int | None = None) -> None:
        """Restore what ``get_state`` gave, onto ``params`` (the same parameters, in order, e.g.
        those of a reloaded model), and ``calls`` (default iterations·gradient_accumulation_steps):
        with accumulation, the calls since the last update say when the next one comes. Raises
        ValueError for an index or a shape that does not fit, or calls that do not give iterations."""
        steps = self.gradient_accumulation_steps or 1
        if calls is not None and calls // steps != iterations:
            raise ValueError(f"{type(self).__name__}.set_state: calls {calls} with gradient_accumulation_steps "
                             f"{self.gradient_accumulation_steps} make {calls // steps} updates, not iterations "
                             f"{iterations}")
        restored: dict[int, tuple[Any, dict[str, Array]]] = {}
        for index, name, array in slots:
            if not 0 <= index < len(params) or tuple(array.shape) != tuple(params[index].data.shape):
                raise ValueError(f"{type(self).__name__}.set_state: slot {name!r} of parameter {index} "
                                 f"has shape {tuple(array.shape)}, which does not fit the {len(params)} "
                                 f"parameters given")
            param = params[index]
            restored.setdefault(id(param), (param, {}))[1][name] = array.astype(param.data.dtype, copy=True)
        self._slots = restored
        self._scratch.clear()
        self.calls = int(iterations) * steps if calls is None else int(calls)

    # --- configuration ---------------------------------------------------------------------------
    def get_config(self) -> dict:
        lr = self._learning_rate
        if isinstance(lr, LearningRateSchedule):
            lr = {"class_name": type(lr).__name__, "config": lr.get_config()}
        elif callable(lr):
            lr = self.current_learning_rate()
        return {"name": self.name, "learning_rate": lr, "weight_decay": self.weight_decay,
                "clipnorm": self.clipnorm, "global_clipnorm": self.global_clipnorm,
                "clipvalue": self.clipvalue, "use_ema": self.use_ema, "ema_momentum": self.ema_momentum,
                "ema_overwrite_frequency": self.ema_overwrite_frequency,
                "gradient_accumulation_steps": self.gradient_accumulation_steps}

    @classmethod
    def from_config(cls, config: dict) -> "Optimizer":
        config = dict(config)
        lr = config.get("learning_rate")
        if isinstance(lr, dict):
            if lr.get("class_name") not in SCHEDULES:
                raise ValueError(f"{cls.__name__}.from_config: unknown learning-rate schedule "
                                 f"{lr.get('class_name')!r}; known: {', '.join(SCHEDULES)}")
            config["learning_rate"] = schedules.deserialize(lr)
        return cls(**config)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} learning_rate={self.current_learning_rate():g} iterations={self.iterations}>"


def _check_learning_rate(owner: str, value):
    if callable(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{owner}: learning_rate must be a number >= 0 or a schedule, got {value!r}")
    return float(value)


def _l2norm(g: Array) -> float:
    flat = g.reshape(-1)
    return math.sqrt(float(get_array_module(g).dot(flat, flat)))
