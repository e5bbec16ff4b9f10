"""``help()`` lists what ``dir()`` of a class gives: a class built on a builtin (a named tuple,
an exception) shows its own names through :class:`OwnNames`, not the builtin's."""

from __future__ import annotations


class OwnNames(type):
    """dir() of the class: the public names this package defines on it and its bases, and a
    named tuple's fields; the builtin's methods (tuple's, Exception's) stay the builtin's.
    Instances keep the full dir()."""

    def __dir__(cls) -> list[str]:
        names = {*getattr(cls, "_fields", ())}
        for klass in cls.__mro__:
            if klass.__module__.startswith("pyprocconn") and not klass.__name__.startswith("_"):
                names.update(name for name in vars(klass) if not name.startswith("_"))
        return sorted(names)
