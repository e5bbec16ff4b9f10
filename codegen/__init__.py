"""Turn the vendored kernel UAPI headers (``headers/``) into ``pyprocconn/kernel/``.

Pipeline: :mod:`codegen.preprocess` (gcc's preprocessor, stub ``<linux/*.h>``) and
:mod:`codegen.cparse` (pycparser) build the typed model of :mod:`codegen.model`, with the
``#define``\\ s evaluated by :mod:`codegen.macros` and :mod:`codegen.cexpr` and C integer types
from the one table in :mod:`codegen.inttypes`; :mod:`codegen.render` feeds the model to the
Jinja2 templates; :mod:`codegen.verify` checks the text just rendered against gcc.
"""
