"""The ``pyprocconn`` command: built on the library, imported by nothing in it."""
