"""Turn the vendored kernel UAPI headers (``headers/``) into ``pyprocconn/kernel/``.

Pipeline: :mod:`codegen.cparse` (gcc preprocessor + pycparser) builds the typed model of
:mod:`codegen.model`; :mod:`codegen.render` feeds it to the Jinja2 templates.
"""
