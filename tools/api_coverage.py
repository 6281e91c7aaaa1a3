"""How much of PyTorch's public Python API deepseek has, namespace by namespace.

    PYTHONPATH=python python tools/api_coverage.py              # counts and percentages
    PYTHONPATH=python python tools/api_coverage.py --missing F  # plus the missing names of F
    PYTHONPATH=python python tools/api_coverage.py --missing all --json out.json

Needs PyTorch (the reference) and deepseek importable. The names of each namespace are
PyTorch's ``dir()`` with these rules (no name with a leading underscore anywhere):

  nn      torch.nn: classes (``isinstance(obj, type)``), e.g. ``Linear``, ``Module``.
  F       torch.nn.functional: callables that are not classes and whose ``__module__``
          starts with ``torch`` (so ``typing.Callable``/``Optional`` re-exports and the
          ``Tensor``/``DType`` aliases do not count).
  Tensor  torch.Tensor: every public attribute, methods and properties alike, in-place
          ``_`` variants included (``add_``, ``shape``, ``T``).
  top     torch: callables (functions, builtins, classes such as ``FloatTensor``).
  optim   torch.optim: classes that subclass ``torch.optim.Optimizer`` (itself included).
  lr_scheduler  torch.optim.lr_scheduler: classes defined in that module
          (``__module__ == 'torch.optim.lr_scheduler'``; ``Counter``, ``partial`` etc. are
          imports, not schedulers).

``--all-public`` counts every public ``dir()`` name of F, optim and lr_scheduler instead
(the rule of issue 15's first numbers).

A name counts as present when deepseek's matching namespace (``deepseek.nn``,
``deepseek.nn.functional``, ``deepseek.Tensor``, ``deepseek``, ``deepseek.optim``,
``deepseek.optim.lr_scheduler``) has an attribute of that name that is not a stub. A stub is
a pure-Python function (or a class whose ``__init__`` is one) whose body, after an optional
docstring, is a single ``raise NotImplementedError(...)``, or any object carrying the marker
attribute ``__deepseek_stub__ = True``. Names implemented with some arguments unsupported
(raising NotImplementedError for those) count as present.
"""

import argparse
import ast
import inspect
import json
import sys
import textwrap


def _torch_names(torch, all_public=False):
    import torch.nn.functional as TF
    import torch.optim.lr_scheduler as TL

    def pub(mod):
        return [n for n in dir(mod) if not n.startswith("_")]

    if all_public:  # the issue's counting: every public name of F, optim and lr_scheduler
        out = _torch_names(torch)
        out["F"], out["optim"], out["lr_scheduler"] = pub(TF), pub(torch.optim), pub(TL)
        return out
    out = {}
    out["nn"] = [n for n in pub(torch.nn) if isinstance(getattr(torch.nn, n), type)]
    out["F"] = [n for n in pub(TF)
                if callable(getattr(TF, n)) and not isinstance(getattr(TF, n), type)
                and str(getattr(getattr(TF, n), "__module__", "") or "").startswith("torch")]
    out["Tensor"] = pub(torch.Tensor)
    out["top"] = [n for n in pub(torch) if callable(getattr(torch, n))]
    out["optim"] = [n for n in pub(torch.optim)
                    if isinstance(getattr(torch.optim, n), type)
                    and issubclass(getattr(torch.optim, n), torch.optim.Optimizer)]
    out["lr_scheduler"] = [n for n in pub(TL) if isinstance(getattr(TL, n), type)
                           and getattr(TL, n).__module__ == "torch.optim.lr_scheduler"]
    return out


def _deepseek_namespaces(ds):
    import deepseek.nn.functional as DF
    import deepseek.optim.lr_scheduler as DL

    return {"nn": ds.nn, "F": DF, "Tensor": ds.Tensor, "top": ds, "optim": ds.optim,
            "lr_scheduler": DL}


def _only_raises(fn):
    """True when ``fn``'s body (after its docstring) is one ``raise NotImplementedError``."""
    fn = inspect.unwrap(fn)
    if not inspect.isfunction(fn):
        return False
    try:
        src = textwrap.dedent(inspect.getsource(fn))
        tree = ast.parse(src)
    except (OSError, TypeError, SyntaxError, IndentationError):
        return False
    if not tree.body or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    body = tree.body[0].body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None),
                                                             ast.Constant):
        body = body[1:]
    if len(body) != 1 or not isinstance(body[0], ast.Raise) or body[0].exc is None:
        return False
    exc = body[0].exc
    name = exc.func if isinstance(exc, ast.Call) else exc
    return isinstance(name, ast.Name) and name.id == "NotImplementedError"


def is_stub(obj):
    """Whether ``obj`` exists only to raise NotImplementedError (see the module docstring)."""
    if getattr(obj, "__deepseek_stub__", False):
        return True
    if isinstance(obj, type):
        init = obj.__dict__.get("__init__")
        return init is not None and _only_raises(init)
    if isinstance(obj, property):
        return obj.fget is not None and _only_raises(obj.fget)
    return _only_raises(obj)


def _lookup(ns, name):
    # Tensor attributes: look in the class dicts so properties are not evaluated.
    if isinstance(ns, type):
        for k in ns.__mro__:
            if name in k.__dict__:
                return True, k.__dict__[name]
        return False, None
    if hasattr(ns, name):
        return True, getattr(ns, name)
    return False, None


def coverage(all_public=False):
    """``{ns: (present names, missing names, stub names)}`` for each namespace."""
    import torch
    import deepseek

    ref = _torch_names(torch, all_public)
    mine = _deepseek_namespaces(deepseek)
    out = {}
    for ns, names in ref.items():
        present, missing, stubs = [], [], []
        for n in names:
            found, obj = _lookup(mine[ns], n)
            if not found:
                missing.append(n)
            elif is_stub(obj):
                stubs.append(n)
            else:
                present.append(n)
        out[ns] = (present, missing, stubs)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--missing", metavar="NS", action="append", default=[],
                    help="also list the missing names of NS (nn, F, Tensor, top, optim, "
                         "lr_scheduler, or all); may repeat")
    ap.add_argument("--json", metavar="PATH", help="write the full result as JSON")
    ap.add_argument("--all-public", action="store_true",
                    help="count every public name of F, optim and lr_scheduler (modules, "
                         "typing re-exports and helpers included), as issue 15 first did")
    args = ap.parse_args(argv)
    import torch

    cov = coverage(args.all_public)
    print(f"deepseek API coverage against PyTorch {torch.__version__}")
    print(f"{'namespace':<14}{'present':>9}{'of':>6}{'%':>8}{'stubs':>7}")
    for ns, (present, missing, stubs) in cov.items():
        total = len(present) + len(missing) + len(stubs)
        pct = 100.0 * len(present) / total if total else 0.0
        print(f"{ns:<14}{len(present):>9}{total:>6}{pct:>7.1f}%{len(stubs):>7}")
    want = set(cov) if "all" in args.missing else set(args.missing)
    bad = want - set(cov)
    if bad:
        ap.error(f"unknown namespace(s) {sorted(bad)}; expected one of {sorted(cov)} or all")
    for ns in cov:
        if ns in want:
            present, missing, stubs = cov[ns]
            print(f"\nmissing in {ns} ({len(missing)}):")
            print(textwrap.fill(" ".join(missing), 96))
            if stubs:
                print(f"stubs in {ns} (raise NotImplementedError; not counted): {' '.join(stubs)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__,
                       "namespaces": {ns: {"present": p, "missing": m, "stubs": s}
                                      for ns, (p, m, s) in cov.items()}}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
