"""What a PyTorch user hits first (issue 15's defects): no abort on a big allocation,
printing exactly like PyTorch, Python ints that do not fit int64, ``Size`` shapes,
PyTorch's grad_fn names, and ``deepseek.load`` errors that name the file."""

import os
import pickle
import subprocess
import sys
import textwrap

import pytest

import deepseek as ds

try:
    import torch
except Exception:  # noqa: BLE001 - torch is only a reference here
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch (the reference) is not installed")

OVERCOMMIT_ALWAYS = (
    os.path.exists("/proc/sys/vm/overcommit_memory")
    and open("/proc/sys/vm/overcommit_memory").read().strip() == "1"
)


def run_py(code, timeout=120, lazy=False):
    """Runs ``code`` in a fresh interpreter (eager unless ``lazy``: these tests are about
    when errors raise); returns (returncode, stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if k != "DEEPSEEK_LAZY"}
    if lazy:
        env["DEEPSEEK_LAZY"] = "1"
    p = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                       text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.skipif(OVERCOMMIT_ALWAYS, reason="vm.overcommit_memory=1 grants any request")
def test_huge_deferred_values_raise_when_realised():
    # In lazy mode nothing is allocated at the call; the value's first use raises.
    rc, out, err = run_py("""
        import deepseek as ds
        y = ds.zeros(1, 1).expand(10**6, 10**6).contiguous()
        assert y.is_deferred
        for name, f in {"tolist": y.tolist, "realize": y.realize, "item": lambda: y[0, 0].item()}.items():
            try:
                f()
                print(name, "no error")
            except RuntimeError as e:
                print(name, "RuntimeError", e)
        print("alive", (ds.ones(3) + 1).tolist())
    """, lazy=True)
    assert rc == 0, err
    lines = dict(l.split(" ", 1) for l in out.strip().splitlines())
    assert lines.pop("alive") == "[2.0, 2.0, 2.0]"
    for name, msg in lines.items():
        assert msg.startswith("RuntimeError") and "you tried to allocate" in msg, (name, msg)


# --------------------------------------------------------------------------------- allocation

@pytest.mark.skipif(OVERCOMMIT_ALWAYS, reason="vm.overcommit_memory=1 grants any request")
def test_huge_allocations_raise_instead_of_aborting():
    rc, out, err = run_py("""
        import deepseek as ds
        x = ds.zeros(1, 1)
        cases = {
            "zeros": lambda: ds.zeros(10**12),
            "zeros_2_62": lambda: ds.zeros(2**62),
            "randn": lambda: ds.randn(10**11),
            "arange": lambda: ds.arange(10**12),
            "empty": lambda: ds.empty(10**12),
            "ones_2d": lambda: ds.ones(10**6, 10**6),
            "full": lambda: ds.full((10**12,), 1.5),
            "expand_contiguous": lambda: x.expand(10**6, 10**6).contiguous(),
            "expand_exp": lambda: x.expand(10**6, 10**6).exp(),
            "matmul": lambda: ds.zeros(10**6, 1) @ ds.zeros(1, 10**6),
            "randperm": lambda: ds.randperm(10**12),
        }
        for name, f in cases.items():
            try:
                f()
                print(name, "no error")
            except RuntimeError as e:
                print(name, "RuntimeError", e)
        print("alive", (ds.ones(3) + 1).tolist())
    """)
    assert rc == 0, err
    lines = dict(l.split(" ", 1) for l in out.strip().splitlines())
    assert lines.pop("alive") == "[2.0, 2.0, 2.0]"
    for name, msg in lines.items():
        assert msg.startswith("RuntimeError"), (name, msg)
        assert "you tried to allocate" in msg, (name, msg)
    assert "4000000000000 bytes" in lines["zeros"]
    assert "18446744073709551616 bytes" in lines["zeros_2_62"]
    assert lines["matmul"].startswith("RuntimeError matmul:"), lines["matmul"]


def test_shape_overflow_raises():
    with pytest.raises(RuntimeError, match="overflow"):
        ds.zeros(2**40, 2**40)
    with pytest.raises(RuntimeError, match="overflow"):
        ds.zeros(1, 1).expand(2**40, 2**40)
    assert ds.zeros(2**40, 2**40, 0).shape == (2**40, 2**40, 0)


def test_creation_property_never_aborts():
    """Random creation calls (sizes, dtypes, shapes, including absurd ones) in a child
    interpreter: each returns or raises; the interpreter itself never dies."""
    big = "" if not OVERCOMMIT_ALWAYS else "BIG = [s for s in BIG if s > 2**62 or s < 0]"
    rc, out, err = run_py(f"""
        import random
        import deepseek as ds
        rng = random.Random(0)
        SMALL = [0, 1, 2, 3, 7]
        BIG = [10**12, 2**40, 2**62, 2**63 - 1, 2**63, 2**64, -1, -7]
        {big}
        DTYPES = [None, ds.float32, ds.float64, ds.float16, ds.bfloat16, ds.int64, ds.int32,
                  ds.uint8, ds.bool]
        def size():
            return rng.choice(BIG) if rng.random() < 0.25 else rng.choice(SMALL)
        def shape():
            return tuple(size() for _ in range(rng.randint(0, 3)))
        FNS = [
            lambda s, d: ds.zeros(*s, dtype=d),
            lambda s, d: ds.ones(s, dtype=d),
            lambda s, d: ds.empty(*s, dtype=d),
            lambda s, d: ds.full(s, 3, dtype=d),
            lambda s, d: ds.rand(*s, dtype=d),
            lambda s, d: ds.randn(*s, dtype=d),
            lambda s, d: ds.randint(0, 5, s, dtype=d),
            lambda s, d: ds.arange(s[0] if s else size(), dtype=d),
            lambda s, d: ds.eye(s[0] if s else size(), dtype=d),
            lambda s, d: ds.zeros(1, dtype=d).expand(*s).contiguous() if s else None,
            lambda s, d: ds.tensor([size() for _ in s], dtype=d),
            lambda s, d: ds.zeros(2, 3, dtype=d).reshape(*s),
            lambda s, d: ds.randperm(s[0] if s else 3),
        ]
        ok = err = 0
        for i in range(400):
            f, s, d = rng.choice(FNS), shape(), rng.choice(DTYPES)
            try:
                f(s, d)
                ok += 1
            except (RuntimeError, ValueError, TypeError, OverflowError, IndexError) as e:
                err += 1
        print("done", ok, err)
    """, timeout=300)
    assert rc == 0, f"exit {rc}\n{err[-3000:]}"
    assert out.startswith("done"), out
    assert "PanicException" not in err and "panicked" not in err, err[-3000:]


# ---------------------------------------------------------------------------- int overflow

def test_python_int_overflow_like_pytorch():
    with pytest.raises(ValueError, match="Overflow when unpacking long"):
        ds.tensor([2**64])
    with pytest.raises(ValueError, match="Overflow when unpacking long"):
        ds.tensor(2**63)
    with pytest.raises(ValueError, match="Overflow when unpacking long"):
        ds.tensor([[1, 2], [3, -2**63 - 1]])
    assert ds.tensor([-2**63]).tolist() == [-2**63]
    # A float tensor takes big ints as floats, as PyTorch does.
    assert ds.tensor([2**64], dtype=ds.float32).tolist() == [float(2**64)]
    assert ds.tensor([1.5, 2**64]).dtype == ds.float32
    for f in (lambda: ds.ones(2) + 2**64, lambda: ds.ones(2, dtype=ds.int64) * 2**64,
              lambda: ds.full((2,), 2**64), lambda: ds.arange(2**64),
              lambda: ds.ones(2) < 2**70):
        with pytest.raises(OverflowError, match="int too big to convert"):
            f()


@needs_torch
def test_int_overflow_matches_torch_exception_types():
    for f in ("tensor([2**64])", "tensor(2**63)"):
        with pytest.raises(ValueError):
            eval("torch." + f)
        with pytest.raises(ValueError):
            eval("ds." + f)
    for f in ("ones(2) + 2**64", "full((2,), 2**64)"):
        with pytest.raises(OverflowError):
            eval("torch." + f)
        with pytest.raises(OverflowError):
            eval("ds." + f)


# ---------------------------------------------------------------------------------- printing

PRINT_CASES = [
    ("arange(7)", "int64"),
    ("[1.5, 2.25, -3.0]", "float32"),
    ("[1.0, 2.0, 3.0]", "float32"),
    ("[1e10, 1.0]", "float32"),
    ("[1e-5, 1.0]", "float32"),
    ("[0.1, 2000.0]", "float32"),
    ("[123456789.0, 1.0]", "float64"),
    ("[float('nan'), float('inf'), -float('inf'), 1.5]", "float32"),
    ("[float('nan'), 1.0, 2.0]", "float32"),
    ("[float('inf'), 0.0]", "float32"),
    ("[0.0, -0.0]", "float32"),
    ("[[1.0, 2.5], [3.0, 4.0]]", "float64"),
    ("[[1, 2], [3, 4]]", "int32"),
    ("[[True, False], [False, True]]", "bool"),
    ("[1, 255]", "uint8"),
    ("[0.1, 0.2, 0.3]", "float16"),
    ("[0.1, 0.2, 0.3]", "bfloat16"),
    ("3.5", "float32"),
    ("5", "int64"),
    ("1e-8", "float64"),
    ("[]", "float32"),
    ("[]", "int64"),
    ("arange(24).reshape(2, 3, 4)", "float32"),
    ("arange(2000)", "float32"),
    ("arange(1001)", "int64"),
    ("arange(2500).reshape(50, 50)", "float32"),
    ("arange(2400).reshape(4, 30, 20)", "float64"),
    ("[x * 0.37 - 3 for x in range(40)]", "float32"),
    ("[x * 1e6 for x in range(30)]", "float32"),
    ("arange(7) * 1e-3", "float32"),
    ("zeros(2, 0)", "float32"),
    ("zeros(3)", "float32"),
]


def _make(lib, expr, dtype):
    dt = getattr(lib, dtype)
    if expr.startswith(("arange", "zeros")):
        return eval("lib." + expr, {"lib": lib}).to(dt)
    return lib.tensor(eval(expr), dtype=dt)


def _ref(t):
    return repr(t).replace("torch.", "deepseek.")


@needs_torch
@pytest.mark.parametrize("expr,dtype", PRINT_CASES)
def test_repr_matches_pytorch(expr, dtype):
    assert repr(_make(ds, expr, dtype)) == _ref(_make(torch, expr, dtype))


@needs_torch
def test_repr_autograd_suffixes_match_pytorch():
    for lib in (ds, torch):
        lib.manual_seed(0)
    x, tx = ds.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0], requires_grad=True)
    assert repr(x) == _ref(tx)
    # (`a - 1` and `a / 3` record AddBackward0 / MulBackward0 here: the core implements
    # scalar subtraction and division as addition and multiplication.)
    for f in (lambda a: a * 2, lambda a: a + a, lambda a: a.exp(), lambda a: a.sum(),
              lambda a: a.mean(), lambda a: a.relu(), lambda a: a.tanh(),
              lambda a: a.reshape(1, 2) @ a.reshape(2, 1)):
        assert repr(f(x)) == _ref(f(tx))
    assert (x * 2).grad_fn == "MulBackward0"


@needs_torch
@pytest.mark.parametrize("opts", [
    dict(precision=2),
    dict(threshold=5),
    dict(threshold=5, edgeitems=1),
    dict(linewidth=30),
    dict(sci_mode=True),
    dict(sci_mode=False),
    dict(profile="short"),
    dict(profile="full"),
    dict(precision=6, sci_mode=True, linewidth=120),
])
def test_set_printoptions_matches_pytorch(opts):
    cases = [("[x * 0.37 - 3 for x in range(40)]", "float32"), ("[1e10, 1.0]", "float64"),
             ("arange(2000)", "int64"), ("arange(24).reshape(2, 3, 4)", "float32"),
             ("[1.5, 2.25, -3.0]", "float32")]
    try:
        ds.set_printoptions(**opts)
        torch.set_printoptions(**opts)
        for expr, dtype in cases:
            assert repr(_make(ds, expr, dtype)) == _ref(_make(torch, expr, dtype)), (opts, expr)
    finally:
        ds.set_printoptions(profile="default")
        torch.set_printoptions(profile="default")
    assert ds.get_printoptions()["threshold"] == 1000


def test_printing_without_torch():
    assert repr(ds.arange(7)) == "tensor([0, 1, 2, 3, 4, 5, 6])"
    assert repr(ds.tensor([1e10, 1.0])) == "tensor([1.0000e+10, 1.0000e+00])"
    assert repr(ds.tensor([1.0], dtype=ds.float64)) == "tensor([1.], dtype=deepseek.float64)"
    with pytest.raises(ValueError, match="profile"):
        ds.set_printoptions(profile="nope")


# ------------------------------------------------------------------------------- Size, load

def test_shape_is_a_size():
    x = ds.zeros(2, 3, 4)
    for s in (x.shape, x.size()):
        assert isinstance(s, ds.Size) and isinstance(s, tuple)
        assert s == (2, 3, 4) and repr(s) == "deepseek.Size([2, 3, 4])"
    assert isinstance(x.shape[1:], ds.Size) and x.shape[1:] == (3, 4)
    assert x.shape.numel() == 24 and x.size(1) == 3
    assert pickle.loads(pickle.dumps(x.shape)) == x.shape


def test_load_errors_name_the_file(tmp_path):
    for content in (b"garbage that is not a pickle", b"", b"\x80\x04\x95"):
        p = tmp_path / "bad.pt"
        p.write_bytes(content)
        with pytest.raises(pickle.UnpicklingError, match="bad.pt"):
            ds.load(p)


def test_load_is_weights_only_by_default(tmp_path):
    import fractions
    p = tmp_path / "obj.pt"
    ds.save({"counts": fractions.Fraction(1, 3), "w": ds.ones(2)}, p)
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):
        ds.load(p)
    with pytest.raises(pickle.UnpicklingError, match="weights_only"):
        ds.load(p, weights_only=True)
    assert ds.load(p, weights_only=False)["counts"] == fractions.Fraction(1, 3)
    q = tmp_path / "ck.pt"
    ds.save({"model": {"w": ds.ones(2)}, "epoch": 3, "lr": [0.1], "t": (1, "x")}, q)
    ck = ds.load(q)
    assert ck["epoch"] == 3 and ck["model"]["w"].tolist() == [1.0, 1.0]
