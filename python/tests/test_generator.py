"""deepseek.Generator objects and ``generator=`` arguments, against PyTorch's behaviour."""

import math

import numpy as np
import pytest

import deepseek as ds
from deepseek import nn

torch = pytest.importorskip("torch")


def test_new_generator_seed_and_chaining_like_torch():
    g = ds.Generator()
    assert g.initial_seed() == torch.Generator().initial_seed() == 67280421310721
    assert g.manual_seed(42) is g
    assert g.initial_seed() == 42
    assert g.device == ds.device("cpu")
    assert isinstance(ds.Generator(device="cpu"), ds.Generator)
    s = g.seed()
    assert g.initial_seed() == s and 0 <= s < 2 ** 63
    # negative seeds wrap to 64 bits as in torch
    assert ds.Generator().manual_seed(-1).initial_seed() == torch.Generator().manual_seed(-1).initial_seed()


def test_generator_draws_are_reproducible_and_leave_the_global_stream_alone():
    ds.manual_seed(3)
    ref = ds.rand(5).tolist()
    ds.manual_seed(3)
    g = ds.Generator().manual_seed(1)
    a = ds.rand(4, generator=g).tolist()
    assert ds.rand(5).tolist() == ref  # the global generator did not move
    b = ds.rand(4, generator=ds.Generator().manual_seed(1)).tolist()
    assert a == b
    assert ds.rand(4, generator=g).tolist() != a  # g moved on
    g1, g2 = ds.Generator().manual_seed(9), ds.Generator().manual_seed(9)
    for f in (lambda g: ds.randn(3, 2, generator=g),
              lambda g: ds.randint(0, 100, (6,), generator=g),
              lambda g: ds.randint(10, (6,), generator=g),
              lambda g: ds.randperm(12, generator=g),
              lambda g: ds.normal(0.0, 2.0, size=(4,), generator=g),
              lambda g: ds.normal(ds.zeros(4), ds.ones(4), generator=g),
              lambda g: ds.bernoulli(ds.full((8,), 0.5), generator=g),
              lambda g: ds.multinomial(ds.tensor([0.2, 0.3, 0.5]), 4, True, generator=g),
              lambda g: ds.empty(5).uniform_(-1, 1, generator=g),
              lambda g: ds.empty(5).normal_(0, 1, generator=g),
              lambda g: ds.empty(5).exponential_(generator=g),
              lambda g: ds.empty(5).bernoulli_(0.3, generator=g),
              lambda g: ds.empty(5).random_(0, 10, generator=g)):
        assert f(g1).tolist() == f(g2).tolist()


def test_get_state_set_state_round_trip():
    g = ds.Generator().manual_seed(5)
    st = g.get_state()
    assert st.dtype == ds.uint8 and st.dim() == 1
    a = ds.randn(6, generator=g).tolist()
    assert g.set_state(st) is g
    assert ds.randn(6, generator=g).tolist() == a
    h = ds.Generator().set_state(st)
    assert h.initial_seed() == 5
    assert ds.randn(6, generator=h).tolist() == a
    # the default generator too
    st = ds.default_generator.get_state()
    x = ds.rand(3).tolist()
    ds.default_generator.set_state(st)
    assert ds.rand(3).tolist() == x


def test_default_generator_is_the_global_one():
    assert ds.manual_seed(11) is ds.default_generator
    assert ds.initial_seed() == 11 == ds.default_generator.initial_seed()
    a = ds.rand(3).tolist()
    ds.default_generator.manual_seed(11)
    assert ds.rand(3).tolist() == a
    assert ds.rand(3, generator=ds.default_generator).tolist() != a
    s = ds.seed()
    assert ds.initial_seed() == s


def test_data_utilities_take_a_generator():
    data = list(range(20))
    a = [list(s) for s in ds.utils.data.random_split(data, [15, 5],
                                                      generator=ds.Generator().manual_seed(42))]
    b = [list(s) for s in ds.utils.data.random_split(data, [15, 5],
                                                      generator=ds.Generator().manual_seed(42))]
    assert a == b and sorted(a[0] + a[1]) == data
    order = lambda g: [int(x) for batch in ds.utils.data.DataLoader(  # noqa: E731
        data, batch_size=4, shuffle=True, generator=g) for x in batch]
    assert order(ds.Generator().manual_seed(0)) == order(ds.Generator().manual_seed(0))
    rs = lambda g: list(ds.utils.data.RandomSampler(data, generator=g))  # noqa: E731
    assert rs(ds.Generator().manual_seed(1)) == rs(ds.Generator().manual_seed(1))
    ss = lambda g: list(ds.utils.data.SubsetRandomSampler([3, 5, 7, 9], generator=g))  # noqa: E731
    assert ss(ds.Generator().manual_seed(1)) == ss(ds.Generator().manual_seed(1))


def test_init_functions_use_the_generator():
    for f in (nn.init.uniform_, nn.init.normal_, nn.init.xavier_uniform_, nn.init.xavier_normal_,
              nn.init.kaiming_uniform_, nn.init.kaiming_normal_, nn.init.trunc_normal_,
              nn.init.orthogonal_):
        a = f(ds.empty(6, 4), generator=ds.Generator().manual_seed(2)).tolist()
        b = f(ds.empty(6, 4), generator=ds.Generator().manual_seed(2)).tolist()
        assert a == b, f.__name__


def test_trunc_normal_is_a_truncated_normal_like_torch():
    ds.manual_seed(0)
    torch.manual_seed(0)
    for mean, std, a, b in [(0.0, 1.0, -2.0, 2.0), (1.0, 0.5, 0.0, 3.0), (0.0, 0.02, -0.04, 0.04)]:
        x = nn.init.trunc_normal_(ds.empty(200000), mean, std, a, b).numpy()
        t = torch.nn.init.trunc_normal_(torch.empty(200000), mean, std, a, b).numpy()
        assert x.min() >= a and x.max() <= b
        # same distribution: moments and quantiles agree with torch's sample
        assert abs(x.mean() - t.mean()) < 0.01 * std
        assert abs(x.std() - t.std()) < 0.01 * std
        for q in (0.05, 0.25, 0.5, 0.75, 0.95):
            assert abs(np.quantile(x, q) - np.quantile(t, q)) < 0.02 * std


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 4), (4, 2, 3, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    w = nn.init.orthogonal_(ds.empty(*shape), gain=2.0).numpy().reshape(shape[0], -1)
    r, c = w.shape
    m = w @ w.T if r <= c else w.T @ w
    np.testing.assert_allclose(m, 4.0 * np.eye(min(r, c)), atol=1e-4)
    with pytest.raises(ValueError, match="2 or more"):
        nn.init.orthogonal_(ds.empty(4))


@pytest.mark.parametrize("shape,groups", [((4, 4, 3), 1), ((6, 3, 3, 3), 2), ((4, 6, 1, 3, 3), 1),
                                          ((8, 2, 5, 5), 4)])
def test_dirac_equals_torch(shape, groups):
    a = nn.init.dirac_(ds.empty(*shape), groups=groups).numpy()
    b = torch.nn.init.dirac_(torch.empty(*shape), groups=groups).numpy()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError):
        nn.init.dirac_(ds.empty(3, 3))


def test_sparse_zeros_per_column():
    w = nn.init.sparse_(ds.empty(10, 6), sparsity=0.3, std=0.5,
                        generator=ds.Generator().manual_seed(0)).numpy()
    zeros = (w == 0).sum(axis=0)
    assert (zeros == math.ceil(0.3 * 10)).all()  # a normal draw is never exactly 0
    t = torch.nn.init.sparse_(torch.empty(10, 6), sparsity=0.3).numpy()
    assert ((t == 0).sum(axis=0) == zeros).all()  # torch's count per column


def test_bad_generator_arguments():
    with pytest.raises(TypeError, match="deepseek.Generator"):
        ds.rand(3, generator="seed")
    with pytest.raises(TypeError, match="deepseek.Generator"):
        ds.randperm(3, generator=np.random.default_rng(0))
    with pytest.raises(RuntimeError, match="Overflow"):
        ds.Generator().manual_seed(2 ** 64)
    with pytest.raises(RuntimeError, match="Overflow"):
        ds.manual_seed(-2 ** 63 - 1)
    with pytest.raises(TypeError):
        ds.manual_seed("1")
    with pytest.raises(RuntimeError, match="get_state"):
        ds.Generator().set_state(ds.zeros(5, dtype=ds.uint8))
    with pytest.raises(RuntimeError, match="all-zero"):
        ds.Generator().set_state(ds.zeros(40, dtype=ds.uint8))
    with pytest.raises(ValueError, match="exceed"):
        nn.init.trunc_normal_(ds.empty(3), a=1.0, b=0.0)


def test_random_module_like_torch_random():
    st = ds.get_rng_state()
    assert st.dtype == ds.uint8
    a = ds.rand(4).tolist()
    ds.set_rng_state(st)
    assert ds.rand(4).tolist() == a
    ds.random.manual_seed(4)
    assert ds.random.initial_seed() == 4 == ds.initial_seed()
    before = ds.random.get_rng_state()
    with ds.random.fork_rng():
        ds.rand(10)
    assert ds.random.get_rng_state().tolist() == before.tolist()
    ds.set_rng_state(tuple(ds._C.get_rng_state()))  # the old tuple form still restores
    assert ds.random.Generator is ds.Generator
    ns = {}
    exec("from deepseek import *", ns)
    assert "random" not in ns  # does not shadow the standard library's random
