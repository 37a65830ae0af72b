"""Attribution methods as settings objects: the base class every method subclasses, and the registry.

A method is one file in this folder: a dataclass that subclasses :class:`Method`, with a ``name``, its
settings as fields and ``token_norms``. Defining the class registers it (``helpers.attribution`` imports
every module of its folder), so :func:`helpers.attribution.word_weights`, the roster run, the sweep, the
explorer and :func:`helpers.explain.explain` accept it, by name or as an object (``IG(n_steps=20)``), with no
other edit. The object is the one place a method's settings live: the entry points take it whole, as captum's
and shap's explainers are objects holding theirs.
"""
from __future__ import annotations

from ..encoders import Encoder

__all__ = ["Method", "methods", "make_method", "method_options"]


class Method:
    """An attribution method: its settings (the fields of a dataclass) and how it attributes one sentence's tokens.

    Subclasses are registered by their ``name`` when they are defined, so a new method is one new file
    (a subclass of this class, imported before use) and no edit elsewhere: :func:`word_weights`, the
    roster run (:func:`helpers.roster.roster_results`), the sweep (:mod:`helpers.sweep`) and the explorer
    look methods up here and pass each method only the options its fields name.

    A subclass defines ``name``, its settings as dataclass fields (a random method holds its ``seed`` there
    too), and :meth:`token_norms`; it may set ``shortens_text`` (the method sees the text itself, not token
    ids, so a long text is shortened before it) and override :meth:`settings` (its part of the cache key)
    and :meth:`validate`.
    """

    name: str = ""
    shortens_text: bool = False
    registry: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            Method.registry[cls.name] = cls

    @classmethod
    def option_names(cls) -> tuple:
        """The keyword options this method takes (its dataclass fields)."""
        import dataclasses

        return tuple(f.name for f in dataclasses.fields(cls)) if dataclasses.is_dataclass(cls) else ()

    @classmethod
    def from_options(cls, options: dict, strict: bool = False) -> "Method":
        """The method with the options it takes from ``options`` (the others are for other methods); with
        ``strict``, an option it does not take is an error naming it."""
        names = cls.option_names()
        if strict:
            unknown = sorted(set(options) - set(names))
            if unknown:
                raise TypeError(f"method {cls.name!r} takes the options {list(names)}; got {unknown}.")
        return cls(**{k: v for k, v in options.items() if k in names})

    def validate(self) -> None:
        """Raise an error naming the setting at fault (called before any sentence is attributed)."""

    def settings(self) -> dict:
        """The method's part of the cache key: everything that changes its numbers."""
        import dataclasses

        return {"method": self.name, **dataclasses.asdict(self)}

    def replace(self, **changes) -> "Method":
        """A copy with ``changes`` to its settings (``IG(...).replace(projections=None)``: the exact run of a
        sketch); a name that is not one of its settings is an error naming it."""
        import dataclasses

        unknown = sorted(set(changes) - set(self.option_names()))
        if unknown:
            raise TypeError(f"method {self.name!r} takes the settings {list(self.option_names())}; got {unknown}.")
        return dataclasses.replace(self, **changes)

    def token_norms(self, encoder: Encoder, text: str, inputs: dict) -> dict:
        """``token_norms`` (one non-negative number per token of ``inputs``), ``completeness_gap`` and
        optionally ``unresolved_tokens``."""
        raise NotImplementedError


def methods() -> list[str]:
    """The names of every registered attribution method."""
    return sorted(Method.registry)


def make_method(method, options: dict | None = None, strict: bool = False) -> Method:
    """``method`` as a :class:`Method`: an instance as it is, or a registered name with the options it takes
    from ``options``."""
    if isinstance(method, Method):
        return method
    if method not in Method.registry:
        raise ValueError(f"method must be one of {methods()} (or a Method instance), got {method!r}.")
    return Method.registry[method].from_options(dict(options or {}), strict=strict)


def method_options(method: str, options: dict) -> dict:
    """The options of ``options`` that ``method`` takes (how the sweep, the roster run and the explorer hand
    one settings record to any method)."""
    names = make_method(method).option_names() if not isinstance(method, Method) else method.option_names()
    return {k: v for k, v in options.items() if k in names}
