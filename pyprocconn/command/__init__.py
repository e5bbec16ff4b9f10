"""The ``pyprocconn`` command: built on the library, imported by nothing in it.

``options`` parses the arguments into one settings object, ``modes`` turns each batch of events
into lines (the plain stream, or the process table's records), ``output`` writes them as text
or JSON Lines, ``quoting`` makes what processes choose safe to show; ``wait`` and ``check`` are
the two other sub-commands.
"""
