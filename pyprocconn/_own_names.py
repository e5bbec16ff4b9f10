"""``help()`` lists what ``dir()`` of a class gives: a class built on a builtin (a named tuple,
an exception) shows its own names through :class:`OwnNames`, not the builtin's."""

from __future__ import annotations


class OwnNames(type):
    """dir() of the class: the public names defined on it and its bases (a subclass of your own
    included), and a named tuple's fields; not the builtins' (tuple's, Exception's) nor the
    named tuple machinery's. Instances keep the full dir(). (So ``Mock(spec=EventClass)`` knows
    the fields only: spec an instance for the rest.)"""

    def __dir__(cls) -> list[str]:
        names = {*getattr(cls, "_fields", ())}
        for klass in cls.__mro__:
            if klass.__module__ != "builtins" and not klass.__name__.startswith("_"):
                names.update(name for name in vars(klass) if not name.startswith("_"))
        return sorted(names)
