"""Elementwise arithmetic and matrix product. Binary ops broadcast like NumPy; their backward
sums the gradient back to each input's shape (``sum_to``)."""
from __future__ import annotations

from minidl.backend import Array, get_array_module
from minidl.function import Function
from minidl.functional._util import pair, sum_to
from minidl.tensor import Tensor, as_tensor


class Add(Function):
    """y = a + b.  Backward: ∂L/∂a = ∂L/∂y, ∂L/∂b = ∂L/∂y (each summed to its shape)."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a + b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(gy, self.shapes[1])


class Sub(Function):
    """y = a - b.  Backward: ∂L/∂a = ∂L/∂y, ∂L/∂b = -∂L/∂y."""

    def forward(self, a, b):
        self.shapes = a.shape, b.shape
        return a - b

    def backward(self, gy):
        return sum_to(gy, self.shapes[0]), sum_to(-gy, self.shapes[1])


class Mul(Function):
    """y = a ⊙ b.  Backward: ∂L/∂a = ∂L/∂y ⊙ b, ∂L/∂b = ∂L/∂y ⊙ a."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a * b

    def backward(self, gy):
        ga = sum_to(gy * self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(gy * self.a, self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Div(Function):
    """y = a / b.  Backward: ∂L/∂a = ∂L/∂y / b, ∂L/∂b = -∂L/∂y ⊙ a / b²."""

    def forward(self, a, b):
        self.a, self.b = a, b
        return a / b

    def backward(self, gy):
        ga = sum_to(gy / self.b, self.a.shape) if self.needs_input_grad[0] else None
        gb = sum_to(-gy * self.a / (self.b * self.b), self.b.shape) if self.needs_input_grad[1] else None
        return ga, gb


class Neg(Function):
    """y = -x.  Backward: ∂L/∂x = -∂L/∂y."""

    def forward(self, x):
        return -x

    def backward(self, gy):
        return -gy


class Pow(Function):
    """y = x^p for a constant exponent p.  Backward: ∂L/∂x = ∂L/∂y · p · x^(p-1)."""

    def __init__(self, exponent: float):
        self.exponent = exponent

    def forward(self, x):
        self.x = x
        return x ** self.exponent

    def backward(self, gy):
        return gy * self.exponent * self.x ** (self.exponent - 1)


class MatMul(Function):
    """y = a @ b (NumPy's matmul: batched over leading axes, which broadcast).

    Backward: ∂L/∂a = ∂L/∂y @ bᵀ, ∂L/∂b = aᵀ @ ∂L/∂y, transposing the last two axes; a 1-D
    operand is treated as a row (a) or a column (b) vector, as matmul does.
    """

    def forward(self, a, b):
        self.a, self.b = a, b
        return a @ b

    def backward(self, gy):
        xp = get_array_module(gy)
        a, b = self.a, self.b
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        gy2 = gy
        if a.ndim == 1:
            gy2 = xp.expand_dims(gy2, -2)
        if b.ndim == 1:
            gy2 = xp.expand_dims(gy2, -1)
        ga = gb = None
        if self.needs_input_grad[0]:
            ga = sum_to(gy2 @ xp.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if self.needs_input_grad[1]:
            gb = sum_to(xp.swapaxes(a2, -1, -2) @ gy2, b2.shape).reshape(b.shape)
        return ga, gb


class Exp(Function):
    """y = exp(x).  Backward: ∂L/∂x = ∂L/∂y · y."""

    def forward(self, x):
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    """y = ln(x).  Backward: ∂L/∂x = ∂L/∂y / x."""

    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.x


class Sqrt(Function):
    """y = √x.  Backward: ∂L/∂x = ∂L/∂y / (2y)."""

    def forward(self, x):
        self.y = get_array_module(x).sqrt(x)
        return self.y

    def backward(self, gy):
        return gy / (2 * self.y)


class Abs(Function):
    """y = |x|.  Backward: ∂L/∂x = ∂L/∂y · sign(x) (0 at x = 0, a subgradient)."""

    def forward(self, x):
        self.x = x
        return get_array_module(x).abs(x)

    def backward(self, gy):
        return gy * get_array_module(gy).sign(self.x)


class Clip(Function):
    """y = min(max(x, low), high).  Backward: ∂L/∂y where low ≤ x ≤ high, else 0."""

    def __init__(self, low, high):
        self.low, self.high = low, high

    def forward(self, x):
        self.inside = (x >= self.low) & (x <= self.high)
        return get_array_module(x).clip(x, self.low, self.high)

    def backward(self, gy):
        return gy * self.inside


class Where(Function):
    """y = a where condition else b (condition a constant bool array).

    Backward: ∂L/∂a = ∂L/∂y where condition, ∂L/∂b = ∂L/∂y elsewhere (summed to shapes).
    """

    def __init__(self, condition):
        self.condition = condition

    def forward(self, a, b):
        xp = get_array_module(a, b)
        self.shapes = a.shape, b.shape
        return xp.where(self.condition, a, b)

    def backward(self, gy):
        zero = gy.dtype.type(0)
        xp = get_array_module(gy)
        return (sum_to(xp.where(self.condition, gy, zero), self.shapes[0]),
                sum_to(xp.where(self.condition, zero, gy), self.shapes[1]))


class Cast(Function):
    """y = x converted to another dtype.  Backward: ∂L/∂y converted back to x's dtype."""

    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.source = x.dtype
        return x.astype(self.dtype)

    def backward(self, gy):
        return gy.astype(self.source)


def add(a, b) -> Tensor:
    """a + b, broadcasting."""
    return Add().apply(*pair(a, b))


def sub(a, b) -> Tensor:
    """a - b, broadcasting."""
    return Sub().apply(*pair(a, b))


def mul(a, b) -> Tensor:
    """a ⊙ b, broadcasting."""
    return Mul().apply(*pair(a, b))


def div(a, b) -> Tensor:
    """a / b, broadcasting."""
    return Div().apply(*pair(a, b))


def neg(x) -> Tensor:
    """-x."""
    return Neg().apply(x)


def pow(x, exponent: float) -> Tensor:  # noqa: A001 (the op's name)
    """x ** exponent for a constant exponent."""
    if isinstance(exponent, Tensor):
        raise TypeError("pow: the exponent must be a number; for a tensor exponent use exp(b * log(a))")
    return Pow(exponent).apply(x)


def matmul(a, b) -> Tensor:
    """a @ b: (..., n, k) @ (..., k, m) -> (..., n, m)."""
    a, b = as_tensor(a), as_tensor(b)
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(f"matmul: operands must have at least 1 axis, got shapes {a.shape} and {b.shape}")
    if a.shape[-1] != b.shape[-2 if b.ndim > 1 else 0]:
        raise ValueError(f"matmul: inner sizes differ, shapes {a.shape} @ {b.shape}")
    return MatMul().apply(a, b)


def exp(x) -> Tensor:
    """eˣ elementwise."""
    return Exp().apply(x)


def log(x) -> Tensor:
    """Natural logarithm, elementwise."""
    return Log().apply(x)


def sqrt(x) -> Tensor:
    """√x elementwise."""
    return Sqrt().apply(x)


def abs(x) -> Tensor:  # noqa: A001 (the op's name)
    """|x| elementwise."""
    return Abs().apply(x)


def clip(x, low: float, high: float) -> Tensor:
    """x limited to [low, high]; the gradient is zero outside."""
    return Clip(low, high).apply(x)


def where(condition: Array, a, b) -> Tensor:
    """Elementwise choice: a where ``condition`` (a bool array, or Tensor) is True, else b."""
    condition = getattr(condition, "data", condition)
    a, b = pair(a, b)
    return Where(condition).apply(a, b)


def cast(x, dtype) -> Tensor:
    """x converted to ``dtype``; the gradient is converted back."""
    return Cast(dtype).apply(x)
