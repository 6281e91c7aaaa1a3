#!/usr/bin/env python3
"""Runs a PyTorch program unmodified on deepseek: ``import torch`` (and every ``torch.*``
module path) resolves to the matching ``deepseek`` module.

    python tools/run_as_torch.py path/to/main.py [program arguments...]

The program runs as ``__main__`` with its own directory first on ``sys.path``, as
``python main.py`` would. Only the names are aliased: a ``torch.X`` path that has no
``deepseek.X`` module fails to import with the usual ``ModuleNotFoundError`` naming
``deepseek.X``. Used for the real-program runs recorded in bench/RESULTS.md.
"""

import importlib
import importlib.abc
import importlib.util
import os
import runpy
import sys


class _TorchAlias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``torch`` and ``torch.*`` and loads them as the deepseek modules."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "torch" and not fullname.startswith("torch."):
            return None
        real = "deepseek" + fullname[len("torch"):]
        try:
            importlib.import_module(real)
        except ModuleNotFoundError as e:
            if e.name == real or (e.name and real.startswith(e.name + ".")):
                raise ModuleNotFoundError(
                    f"No module named {fullname!r} (deepseek has no {real!r})",
                    name=fullname) from None
            raise
        return importlib.util.spec_from_loader(fullname, self, is_package=True)

    def create_module(self, spec):
        mod = sys.modules["deepseek" + spec.name[len("torch"):]]
        self._spec = getattr(mod, "__spec__", None)
        return mod

    def exec_module(self, module):
        # the import machinery set __spec__ to the alias's spec: give the module its own back
        module.__spec__ = self._spec


def install():
    """Aliases ``torch`` to ``deepseek`` in this interpreter."""
    import deepseek

    for name, mod in list(sys.modules.items()):
        if name == "deepseek" or name.startswith("deepseek."):
            sys.modules.setdefault("torch" + name[len("deepseek"):], mod)
    sys.meta_path.insert(0, _TorchAlias())
    return deepseek


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    install()
    script = argv[1]
    sys.argv = argv[1:]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
