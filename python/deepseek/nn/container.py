"""Containers with PyTorch's behaviour: ``Sequential``, ``ModuleList``, ``ModuleDict``,
``ParameterList`` (``torch.nn.modules.container``)."""

from collections import OrderedDict

from .module import Module
from .parameter import Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList"]


class Sequential(Module):
    """Calls its modules in order. ``Sequential(m1, m2)`` or ``Sequential(OrderedDict)``."""

    def __init__(self, *args):
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for k, m in args[0].items():
                self.add_module(k, m)
        else:
            for i, m in enumerate(args):
                self.add_module(str(i), m)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x

    def __getitem__(self, i):
        mods = list(self._modules.values())
        if isinstance(i, slice):
            keys = list(self._modules.keys())[i]
            return Sequential(OrderedDict((k, self._modules[k]) for k in keys))
        return mods[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, m):
        self.add_module(str(len(self._modules)), m)
        return self


class ModuleList(Module):
    """A list of modules registered as sub-modules ``0``, ``1``, ..."""

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ModuleList(list(self._modules.values())[i])
        n = len(self._modules)
        if not -n <= i < n:
            raise IndexError(f"index {i} is out of range")
        return self._modules[str(i % n)]

    def __setitem__(self, i, m):
        n = len(self._modules)
        self.add_module(str(i % n), m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, m):
        self.add_module(str(len(self._modules)), m)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def insert(self, index, m):
        mods = list(self._modules.values())
        mods.insert(index, m)
        self._modules.clear()
        for i, x in enumerate(mods):
            self.add_module(str(i), x)


class ModuleDict(Module):
    """Holds submodules in a dict, registered so that ``parameters()``, ``to()`` and
    ``state_dict()`` see them.
    """
    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            for k, m in dict(modules).items():
                self.add_module(k, m)

    def __getitem__(self, k):
        return self._modules[k]

    def __setitem__(self, k, m):
        self.add_module(k, m)

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def __contains__(self, k):
        return k in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()


class ParameterList(Module):
    """Holds parameters in a list, registered so that ``parameters()`` and ``state_dict()`` see
    them.
    """
    def __init__(self, values=None):
        super().__init__()
        for v in values or []:
            self.append(v)

    def append(self, p):
        if not isinstance(p, Parameter):
            p = Parameter(p)
        self.register_parameter(str(len(self._parameters)), p)
        return self

    def __getitem__(self, i):
        return list(self._parameters.values())[i]

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())
