"""The Python package's build backend: maturin, plus the MPI backend where Open MPI is.

PEP 517 hooks are maturin's; before each build this adds ``--features mpi`` to
``MATURIN_PEP517_ARGS`` when ``mpicc`` and libclang are found (Debian: ``libopenmpi-dev
openmpi-bin libclang-dev``), so ``pip install .`` gives ``deepseek.distributed`` its MPI
backend wherever Open MPI is installed and still builds where it is not.
``DEEPSEEK_MPI=1`` forces the feature (the build then fails without Open MPI);
``DEEPSEEK_MPI=0`` leaves it out.
"""

import glob
import os
import shutil

import maturin as _maturin


def _libclang_found():
    if os.environ.get("LIBCLANG_PATH"):
        return True
    pats = ["/usr/lib/llvm-*/lib/libclang*.so*", "/usr/lib/*/libclang*.so*",
            "/usr/lib64/libclang*.so*", "/usr/local/lib/libclang*.so*"]
    return any(glob.glob(p) for p in pats)


def _want_mpi():
    mode = os.environ.get("DEEPSEEK_MPI", "auto").strip().lower()
    if mode in ("0", "off", "no", "false"):
        return False
    if mode in ("1", "on", "yes", "true"):
        return True
    return shutil.which("mpicc") is not None and _libclang_found()


def _configure():
    args = os.environ.get("MATURIN_PEP517_ARGS", "")
    if _want_mpi() and "mpi" not in args:
        os.environ["MATURIN_PEP517_ARGS"] = (args + " --features mpi").strip()


def _wrap(name):
    inner = getattr(_maturin, name)

    def hook(*args, **kwargs):
        _configure()
        return inner(*args, **kwargs)

    hook.__name__ = name
    hook.__doc__ = inner.__doc__
    return hook


build_wheel = _wrap("build_wheel")
build_editable = _wrap("build_editable")
build_sdist = _wrap("build_sdist")
get_requires_for_build_wheel = _wrap("get_requires_for_build_wheel")
get_requires_for_build_sdist = _wrap("get_requires_for_build_sdist")
prepare_metadata_for_build_wheel = _wrap("prepare_metadata_for_build_wheel")
if hasattr(_maturin, "get_requires_for_build_editable"):
    get_requires_for_build_editable = _wrap("get_requires_for_build_editable")
if hasattr(_maturin, "prepare_metadata_for_build_editable"):
    prepare_metadata_for_build_editable = _wrap("prepare_metadata_for_build_editable")
