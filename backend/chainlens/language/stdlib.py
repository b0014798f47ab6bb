"""The pure standard-library modules a program may import: ``math``, ``random``,
``itertools``, ``functools``, ``collections``, ``operator``, ``statistics``, ``string``,
``copy``, ``time`` and ``typing``.

Each is an exact allow-list (``allowlist.STDLIB``) of callables made here for one run.
Where a call could do unbounded work before any counter saw it, its size is checked
first: ``math.factorial(10**7)`` and ``math.comb`` by the bits of their result,
``random.getrandbits`` and ``random.choices`` by what they would make, the combinatorics
of ``itertools`` by the pools they copy, ``copy.deepcopy`` by the elements it would
copy. Every iterator ``itertools`` returns counts its items against
``max_loop_iterations``, as a loop does: ``list(itertools.count())`` stops there. The
``operator`` functions are the interpreter's own operators, so a tensor's ``add`` goes
through the call gate and a Python integer's size is checked as for ``a * b``.
"""

from __future__ import annotations

import collections
import copy
import functools
import itertools
import math
import operator
import random
import statistics
import string
import time
import typing
from collections.abc import Callable, Iterable, Iterator
from types import SimpleNamespace
from typing import Any

import torch

from .objects import Link


class Counted:
    """An iterator a library made, counting each item it gives against the run's
    ``max_loop_iterations`` (an endless ``itertools.count()`` ends there)."""

    __slots__ = ("it", "link")

    def __init__(self, it: Iterator[Any], link: Link) -> None:
        self.it = it
        self.link = link

    def __iter__(self) -> Counted:
        return self

    def __next__(self) -> Any:
        item = next(self.it)
        interp = self.link.running()
        interp.tick(interp.line)
        return item


class SafeRandom:
    """``random`` for one run: its own generator, seeded with the run's seed (the same
    numbers as Python's ``random`` after ``random.seed(seed)``), with sizes checked."""

    def __init__(self, link: Link, seed: Any = None) -> None:
        self._link = link
        self._r = random.Random(seed)

    def _limits(self) -> Any:
        return self._link.running().gate

    def seed(self, a: Any = None) -> None:
        self._r.seed(a)

    def random(self) -> float:
        return self._r.random()

    def uniform(self, a: float, b: float) -> float:
        return self._r.uniform(a, b)

    def randint(self, a: int, b: int) -> int:
        return self._r.randint(a, b)

    def randrange(self, *args: int) -> int:
        return self._r.randrange(*args)

    def choice(self, seq: Any) -> Any:
        return self._r.choice(seq)

    def choices(
        self, population: Any, weights: Any = None, *, cum_weights: Any = None, k: int = 1
    ) -> list[Any]:
        self._limits().seq_len(k, "random.choices(k=...)")
        return self._r.choices(population, weights, cum_weights=cum_weights, k=k)

    def sample(self, population: Any, k: int, *, counts: Any = None) -> list[Any]:
        self._limits().seq_len(k, "random.sample(k=...)")
        return self._r.sample(population, k, counts=counts)

    def shuffle(self, x: list[Any]) -> None:
        if not isinstance(x, list):
            raise TypeError(
                "random.shuffle shuffles a list in chainlens (for a tensor: "
                "x[torch.randperm(len(x))])"
            )
        self._r.shuffle(x)

    def gauss(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        return self._r.gauss(mu, sigma)

    def normalvariate(self, mu: float = 0.0, sigma: float = 1.0) -> float:
        return self._r.normalvariate(mu, sigma)

    def lognormvariate(self, mu: float, sigma: float) -> float:
        return self._r.lognormvariate(mu, sigma)

    def expovariate(self, lambd: float = 1.0) -> float:
        return self._r.expovariate(lambd)

    def betavariate(self, alpha: float, beta: float) -> float:
        return self._r.betavariate(alpha, beta)

    def triangular(self, low: float = 0.0, high: float = 1.0, mode: float | None = None) -> float:
        return self._r.triangular(low, high, mode)

    def getrandbits(self, k: int) -> int:
        self._limits().int_bits(k, f"random.getrandbits({k})")
        return self._r.getrandbits(k)

    def Random(self, seed: Any = None) -> SafeRandom:  # noqa: N802 - the module's name for it
        return SafeRandom(self._link, seed)


#: What a program may call on a ``random`` module or generator.
RANDOM_NAMES = frozenset(n for n in vars(SafeRandom) if not n.startswith("_"))

_LN2 = math.log(2)


def _math(link: Link) -> SimpleNamespace:
    def limits() -> Any:
        return link.running().gate

    def log2_factorial(n: int) -> float:
        return math.lgamma(n + 1) / _LN2 if n > 1 else 0.0

    def factorial(n: int) -> int:
        if isinstance(n, int) and n > 1:
            limits().int_bits(int(log2_factorial(n)), f"math.factorial({n})")
        return math.factorial(n)

    def comb(n: int, k: int) -> int:
        if isinstance(n, int) and isinstance(k, int) and 0 <= k <= n:
            bits = log2_factorial(n) - log2_factorial(k) - log2_factorial(n - k)
            limits().int_bits(int(bits), f"math.comb({n}, {k})")
        return math.comb(n, k)

    def perm(n: int, k: int | None = None) -> int:
        if isinstance(n, int) and n >= 0 and (k is None or isinstance(k, int) and 0 <= k <= n):
            bits = log2_factorial(n) - log2_factorial(n - (n if k is None else k))
            limits().int_bits(int(bits), f"math.perm({n}, {k})")
        return math.perm(n, k)

    def product_bits(values: Iterable[Any], what: str) -> list[Any]:
        items = list(values)
        bits = sum(v.bit_length() for v in items if isinstance(v, int))
        limits().int_bits(bits, what)
        return items

    def prod(iterable: Iterable[Any], *, start: Any = 1) -> Any:
        return math.prod(product_bits(iterable, "math.prod(...)"), start=start)

    def lcm(*integers: int) -> int:
        return math.lcm(*product_bits(integers, "math.lcm(...)"))

    plain = (
        "sqrt exp exp2 log log2 log10 log1p expm1 sin cos tan asin acos atan atan2 sinh "
        "cosh tanh asinh acosh atanh floor ceil trunc fabs fmod copysign hypot isclose "
        "isfinite isinf isnan degrees radians fsum gcd isqrt pow erf erfc gamma lgamma "
        "dist cbrt modf frexp remainder pi e tau inf nan"
    ).split()
    return SimpleNamespace(
        **{n: getattr(math, n) for n in plain},
        factorial=factorial,
        comb=comb,
        perm=perm,
        prod=prod,
        lcm=lcm,
    )


def _itertools(link: Link) -> SimpleNamespace:
    def limits() -> Any:
        return link.running().gate

    def counted(make: Callable[..., Iterator[Any]]) -> Callable[..., Counted]:
        return lambda *a, **k: Counted(make(*a, **k), link)

    def pool(it: Any, copies: int, name: str) -> list[Any]:
        """An input a function copies whole first, taken one bounded item at a time."""
        cap = limits().settings.max_sequence_length
        items = list(itertools.islice(iter(it), cap + 1))
        limits().seq_len(len(items) * max(copies, 1), f"itertools.{name}'s input")
        return items

    def product(*iterables: Any, repeat: int = 1) -> Counted:
        return Counted(
            itertools.product(*(pool(it, repeat, "product") for it in iterables), repeat=repeat),
            link,
        )

    def pooled(make: Callable[..., Iterator[Any]], name: str) -> Callable[..., Counted]:
        """permutations, combinations...: their one input copied into a pool first."""
        return lambda iterable, *a, **k: Counted(make(pool(iterable, 1, name), *a, **k), link)

    lazy = (
        "count cycle repeat chain islice accumulate zip_longest groupby takewhile "
        "dropwhile pairwise compress filterfalse starmap"
    ).split()
    return SimpleNamespace(
        **{n: counted(getattr(itertools, n)) for n in lazy},
        product=product,
        **{
            n: pooled(getattr(itertools, n), n)
            for n in ("permutations", "combinations", "combinations_with_replacement")
        },
    )


def _operator(link: Link) -> SimpleNamespace:
    """The interpreter's own operators: what ``a + b`` would do, checks included."""

    def binary(fn: Callable[[Any, Any], Any], name: str) -> Callable[[Any, Any], Any]:
        return lambda a, b: link.running().binop(fn, name, a, b)

    def itemgetter(*items: Any) -> Callable[[Any], Any]:
        def get(obj: Any) -> Any:
            interp = link.running()
            values = tuple(interp.getitem(obj, i) for i in items)
            return values[0] if len(items) == 1 else values

        return get

    names = {
        "add": "add",
        "sub": "sub",
        "mul": "mul",
        "truediv": "div",
        "floordiv": "floordiv",
        "mod": "remainder",
        "pow": "pow",
        "matmul": "matmul",
        "and_": "bitwise_and",
        "or_": "bitwise_or",
        "xor": "bitwise_xor",
        "lshift": "lshift",
        "rshift": "rshift",
    }
    plain = "neg pos abs not_ truth eq ne lt le gt ge is_ is_not contains index".split()
    return SimpleNamespace(
        **{n: binary(getattr(operator, n), op) for n, op in names.items()},
        **{n: getattr(operator, n) for n in plain},
        getitem=lambda obj, key: link.running().getitem(obj, key),
        itemgetter=itemgetter,
    )


def _copy(link: Link) -> SimpleNamespace:
    def deepcopy(x: Any) -> Any:
        """Checked first: the tensors it would copy, against the limits on live elements
        and on parameters (a module's parameters are copied whole)."""
        gate = link.running().gate
        elements, parameters = _tensor_elements(x, gate.settings.max_sequence_length)
        gate.copied_elements(elements, "copy.deepcopy")
        gate.add_parameters(parameters, "copy.deepcopy")
        return copy.deepcopy(x)

    return SimpleNamespace(copy=copy.copy, deepcopy=deepcopy)


def _tensor_elements(x: Any, cap: int) -> tuple[int, int]:
    """Elements of the tensors reachable from ``x`` (containers, modules, the program's
    objects), and how many of them are a module's parameters; the walk stops past
    ``cap`` objects."""
    elements = parameters = 0
    stack: list[Any] = [x]
    seen: set[int] = set()
    while stack and len(seen) <= cap:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if isinstance(obj, torch.Tensor):
            elements += obj.numel()
        elif isinstance(obj, torch.nn.Module):
            for p in obj.parameters():
                parameters += p.numel()
                elements += p.numel()
            elements += sum(b.numel() for b in obj.buffers())
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple, set, frozenset, collections.deque)):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") and not isinstance(obj, type):
            stack.extend(vars(obj).values())
    return elements, parameters


class WrapsMarker:
    """What ``functools.wraps(f)`` makes: a decorator that leaves the program's function as
    it is (a real ``wraps`` would copy one interpreter object's fields onto another)."""

    def __call__(self, wrapper: Any) -> Any:
        return wrapper


def wraps(wrapped: Any, *args: Any, **kwargs: Any) -> WrapsMarker:
    return WrapsMarker()


def lru_cache(*args: Any, **kwargs: Any) -> Any:
    """A marker: the interpreter caches a function it decorates (``Interpreter._memoized``)."""
    raise TypeError(
        "functools.lru_cache is available as a decorator in chainlens "
        "(@functools.lru_cache or @functools.lru_cache(maxsize=...))"
    )


def cache(*args: Any, **kwargs: Any) -> Any:
    """A marker, as ``lru_cache`` is."""
    raise TypeError("functools.cache is available as a decorator in chainlens (@functools.cache)")


def make_stdlib(link: Link, seed: int) -> dict[str, object]:
    """Each importable standard-library module of one run, by its name."""
    return {
        "math": _math(link),
        "random": SafeRandom(link, seed),
        "itertools": _itertools(link),
        "functools": SimpleNamespace(
            partial=functools.partial,
            reduce=functools.reduce,
            cmp_to_key=functools.cmp_to_key,
            lru_cache=lru_cache,
            cache=cache,
            wraps=wraps,
        ),
        "collections": SimpleNamespace(
            defaultdict=collections.defaultdict,
            OrderedDict=collections.OrderedDict,
            Counter=collections.Counter,
            deque=collections.deque,
            namedtuple=collections.namedtuple,
        ),
        "operator": _operator(link),
        "statistics": SimpleNamespace(
            **{
                n: getattr(statistics, n)
                for n in (
                    "mean fmean median median_low median_high mode stdev pstdev variance "
                    "pvariance geometric_mean harmonic_mean"
                ).split()
            }
        ),
        "string": SimpleNamespace(
            **{
                n: getattr(string, n)
                for n in (
                    "ascii_letters ascii_lowercase ascii_uppercase digits hexdigits octdigits "
                    "punctuation whitespace printable"
                ).split()
            }
        ),
        "copy": _copy(link),
        "time": SimpleNamespace(
            time=time.time, perf_counter=time.perf_counter, monotonic=time.monotonic
        ),
        "typing": SimpleNamespace(
            **{
                n: getattr(typing, n)
                for n in (
                    "Any Callable Dict List Optional Sequence Tuple Union Iterable Iterator Set "
                    "Mapping"
                ).split()
            }
        ),
    }


#: The names each module allows (what the checker reads before anything runs).
STDLIB_NAMES: dict[str, frozenset[str]] = {
    name: frozenset(vars(obj)) if isinstance(obj, SimpleNamespace) else RANDOM_NAMES
    for name, obj in make_stdlib(Link(None), 0).items()
}
