"""The ``nn.functional`` names and ``nn`` modules added for issue 15, against PyTorch:
forward values and gradients in float32 (and float64), non-default arguments, and a bad
argument per family."""

import numpy as np
import pytest

import deepseek as ds
import deepseek.nn.functional as DF

torch = pytest.importorskip("torch")
import torch.nn.functional as TF  # noqa: E402

from _api_check import arr, check, const, f64  # noqa: E402

X = arr((3, 4, 5))
POS = arr((3, 4, 5), kind="pos")

# (name, args, kwargs); the same call on both sides.
F_CASES = [
    ("relu6", [X * 4], {}),
    ("hardtanh", [X], {}),
    ("hardtanh", [X], {"min_val": -0.5, "max_val": 1.5}),
    ("hardsigmoid", [X * 3], {}),
    ("hardswish", [X * 3], {}),
    ("selu", [X], {}),
    ("celu", [X], {}),
    ("celu", [X], {"alpha": 0.7}),
    ("softshrink", [X], {}),
    ("softshrink", [X], {"lambd": 1.0}),
    ("hardshrink", [X], {"lambd": 0.3}),
    ("tanhshrink", [X], {}),
    ("threshold", [X], {"threshold": 0.2, "value": -3.0}),
    ("logsigmoid", [X], {}),
    ("softsign", [X], {}),
    ("mish", [X], {}),
    ("glu", [arr((3, 6))], {}),
    ("glu", [arr((4, 3))], {"dim": 0}),
    ("rrelu", [X], {}),
    ("rrelu", [X], {"lower": 0.2, "upper": 0.4, "training": False}),
    ("prelu", [arr((2, 3, 4)), arr((3,), seed=3)], {}),
    ("prelu", [arr((2, 3, 4)), arr((1,), seed=3)], {}),
    ("soft_margin_loss", [arr((4, 5)), const(arr((4, 5), kind="sign"))], {}),
    ("soft_margin_loss", [arr((4, 5)), const(arr((4, 5), kind="sign"))], {"reduction": "none"}),
    ("margin_ranking_loss", [arr((6,)), arr((6,), seed=2), const(arr((6,), kind="sign"))],
     {"margin": 0.3}),
    ("margin_ranking_loss", [arr((6,)), arr((6,), seed=2), const(arr((6,), kind="sign"))],
     {"reduction": "sum"}),
    ("hinge_embedding_loss", [arr((4, 5)), const(arr((4, 5), kind="sign"))], {}),
    ("hinge_embedding_loss", [arr((4, 5)), const(arr((4, 5), kind="sign"))],
     {"margin": 0.5, "reduction": "none"}),
    ("cosine_embedding_loss", [arr((4, 6)), arr((4, 6), seed=2), const(arr((4,), kind="sign"))], {}),
    ("cosine_embedding_loss", [arr((4, 6)), arr((4, 6), seed=2), const(arr((4,), kind="sign"))],
     {"margin": 0.2, "reduction": "none"}),
    ("triplet_margin_loss", [arr((4, 6)), arr((4, 6), seed=2), arr((4, 6), seed=3)], {}),
    ("triplet_margin_loss", [arr((4, 6)), arr((4, 6), seed=2), arr((4, 6), seed=3)],
     {"margin": 2.0, "p": 1, "swap": True, "reduction": "none"}),
    ("poisson_nll_loss", [arr((4, 5)), const(arr((4, 5), kind="pos", high=4))], {}),
    ("poisson_nll_loss", [arr((4, 5), kind="pos"), const(arr((4, 5), kind="pos", high=4))],
     {"log_input": False, "full": True, "reduction": "sum"}),
    ("gaussian_nll_loss", [arr((4, 5)), arr((4, 5), seed=2), arr((4, 5), kind="pos")], {}),
    ("gaussian_nll_loss", [arr((4, 5)), arr((4, 5), seed=2), arr((4,), kind="pos")],
     {"full": True, "reduction": "none"}),
    ("gaussian_nll_loss", [arr((4, 5)), arr((4, 5), seed=2), arr((4, 1), kind="pos") * 1e-8],
     {"reduction": "sum"}),
    ("multilabel_soft_margin_loss", [arr((4, 5)), const(arr((4, 5), kind="bool").astype("float32"))],
     {}),
    ("multilabel_soft_margin_loss", [arr((4, 5)), const(arr((4, 5), kind="bool").astype("float32"))],
     {"weight": const(arr((5,), kind="pos")), "reduction": "none"}),
    ("multi_margin_loss", [arr((4, 5)), arr((4,), kind="int", low=0, high=5)], {}),
    ("multi_margin_loss", [arr((4, 5)), arr((4,), kind="int", low=0, high=5)],
     {"p": 2, "margin": 0.5, "weight": const(arr((5,), kind="pos")), "reduction": "sum"}),
    ("multilabel_margin_loss", [arr((3, 4)), np.array([[3, 0, -1, 1], [1, 2, 3, -1],
                                                      [-1, 0, 0, 0]])], {}),
    ("normalize", [X], {}),
    ("normalize", [X], {"p": 1.0, "dim": -1}),
    ("cosine_similarity", [arr((4, 6)), arr((4, 6), seed=2)], {}),
    ("pairwise_distance", [arr((4, 6)), arr((4, 6), seed=2)], {"p": 3.0, "keepdim": True}),
    ("pdist", [arr((5, 3))], {}),
    ("pdist", [arr((5, 3))], {"p": 1.0}),
    ("pixel_shuffle", [arr((2, 8, 3, 3))], {"upscale_factor": 2}),
    ("pixel_unshuffle", [arr((2, 2, 4, 6))], {"downscale_factor": 2}),
    ("channel_shuffle", [arr((2, 6, 3))], {"groups": 3}),
    ("unfold", [arr((2, 3, 5, 6))], {"kernel_size": (2, 3)}),
    ("unfold", [arr((2, 3, 5, 6))], {"kernel_size": 2, "dilation": 2, "padding": 1,
                                     "stride": (2, 1)}),
    ("fold", [arr((2, 12, 12))], {"output_size": (4, 5), "kernel_size": 2}),
    ("fold", [arr((2, 8, 12))], {"output_size": (5, 6), "kernel_size": 2, "padding": 1,
                                 "stride": 2, "dilation": 1}),
    ("conv_transpose2d", [arr((2, 4, 3, 3)), arr((4, 3, 2, 3), seed=2)], {}),
    ("conv_transpose2d", [arr((2, 4, 3, 3)), arr((4, 1, 3, 3), seed=2), arr((2,), seed=3)],
     {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2, "dilation": 1}),
    ("conv_transpose1d", [arr((2, 3, 5)), arr((3, 2, 3), seed=2), arr((2,), seed=3)],
     {"stride": 2, "padding": 1}),
    ("local_response_norm", [arr((2, 6, 4, 3))], {"size": 3}),
    ("local_response_norm", [arr((2, 5, 7))], {"size": 2, "alpha": 0.1, "beta": 0.5, "k": 2.0}),
    ("lp_pool2d", [arr((2, 3, 4, 6), kind="pos")], {"norm_type": 2, "kernel_size": 2}),
    ("lp_pool1d", [arr((2, 3, 6), kind="pos")], {"norm_type": 3, "kernel_size": 3,
                                                  "stride": 2}),
    ("adaptive_avg_pool1d", [arr((2, 3, 7))], {"output_size": 3}),
    ("adaptive_max_pool1d", [arr((2, 3, 8))], {"output_size": 4}),
    ("bilinear", [arr((4, 3)), arr((4, 5), seed=2), arr((2, 3, 5), seed=3),
                  arr((2,), seed=4)], {}),
    ("instance_norm", [arr((2, 3, 5, 4))], {}),
    ("instance_norm", [arr((2, 3, 6)), None, None, arr((3,), seed=2), arr((3,), seed=3)],
     {"eps": 1e-3}),
    ("alpha_dropout", [X], {"p": 0.3, "training": False}),
    ("feature_alpha_dropout", [X], {"p": 0.3, "training": False}),
    ("interpolate", [arr((2, 3, 4, 5))], {"scale_factor": 2}),
    ("interpolate", [arr((2, 3, 4, 5))], {"size": (7, 3), "mode": "nearest-exact"}),
    ("interpolate", [arr((2, 3, 4, 5))], {"size": (7, 9), "mode": "bilinear"}),
    ("interpolate", [arr((2, 3, 4, 5))], {"scale_factor": 1.5, "mode": "bilinear",
                                          "align_corners": True}),
    ("interpolate", [arr((2, 3, 6))], {"size": 4, "mode": "linear"}),
    ("interpolate", [arr((1, 2, 3, 4, 2))], {"scale_factor": 2, "mode": "trilinear"}),
    ("upsample_bilinear", [arr((1, 2, 3, 4))], {"scale_factor": 2}),
    ("upsample_nearest", [arr((1, 2, 3, 4))], {"size": (5, 5)}),
]


def _ids(cases):
    return [f"{c[0]}-{i}" for i, c in enumerate(cases)]


@pytest.mark.parametrize("name,args,kwargs", F_CASES, ids=_ids(F_CASES))
def test_functional_matches_torch(name, args, kwargs):
    check(getattr(DF, name), getattr(TF, name), args, kwargs)


@pytest.mark.parametrize("name,args,kwargs", [c for c in F_CASES if c[0] in (
    "selu", "celu", "softshrink", "mish", "glu", "gaussian_nll_loss", "triplet_margin_loss",
    "unfold", "fold", "conv_transpose2d", "interpolate", "multi_margin_loss", "pdist")][:14])
def test_functional_float64(name, args, kwargs):
    # PyTorch's celu rounds 1 / alpha through float32 (about 3e-8 relative).
    rtol = 1e-7 if name == "celu" else None
    check(getattr(DF, name), getattr(TF, name), f64(args), f64(kwargs), dtype="float64",
          rtol=rtol)


INPLACE = ["relu_", "elu_", "leaky_relu_", "hardtanh_", "selu_", "celu_", "rrelu_",
           "threshold_"]


@pytest.mark.parametrize("name", INPLACE)
def test_functional_inplace(name):
    extra = (0.1, 5.0) if name == "threshold_" else ()
    a = arr((3, 4))
    x, y = ds.tensor(a), torch.tensor(a)
    r = getattr(DF, name)(x, *extra)
    getattr(TF, name)(y, *extra)
    assert r is x
    np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5, atol=1e-6)


def test_inplace_flag_keeps_the_tensor():
    a = arr((3, 4))
    for fn in ("hardtanh", "relu6", "hardsigmoid", "hardswish", "selu", "celu", "mish"):
        x = ds.tensor(a)
        r = getattr(DF, fn)(x, inplace=True)
        assert r is x
        np.testing.assert_allclose(x.numpy(), getattr(TF, fn)(torch.tensor(a)).numpy(),
                                   rtol=1e-5, atol=1e-6)


def test_random_functions_statistics():
    ds.manual_seed(0)
    x = ds.randn(2000)
    y = DF.rrelu(x, 0.1, 0.3, training=True)
    neg = x.numpy() < 0
    ratio = y.numpy()[neg] / x.numpy()[neg]
    assert ratio.min() >= 0.1 - 1e-6 and ratio.max() <= 0.3 + 1e-6
    np.testing.assert_array_equal(y.numpy()[~neg], x.numpy()[~neg])
    g = DF.gumbel_softmax(ds.randn(50, 6), tau=0.5)
    np.testing.assert_allclose(g.sum(-1).numpy(), np.ones(50), rtol=1e-5)
    h = DF.gumbel_softmax(ds.randn(50, 6, requires_grad=True), hard=True)
    assert set(np.unique(h.detach().numpy())) <= {0.0, 1.0}
    np.testing.assert_allclose(h.sum(-1).detach().numpy(), np.ones(50), rtol=1e-6)
    a = DF.alpha_dropout(ds.randn(20000), 0.2, training=True).numpy()
    assert abs(a.mean()) < 0.05 and abs(a.std() - 1) < 0.05  # self-normalising
    f = DF.feature_alpha_dropout(ds.randn(8, 16, 5), 0.5, training=True).numpy()
    assert all(len(np.unique(np.round(f[i, c] - f[i, c], 6))) == 1
               for i in range(8) for c in range(16))


BAD = [
    (lambda: DF.hardtanh(ds.zeros(3), 1.0, -1.0), ValueError),
    (lambda: DF.softshrink(ds.zeros(3), -1.0), ValueError),
    (lambda: DF.glu(ds.zeros(3, 5)), ValueError),
    (lambda: DF.prelu(ds.zeros(2, 3, 4), ds.zeros(4)), ValueError),
    (lambda: DF.rrelu(ds.zeros(3), 0.5, 0.1), ValueError),
    (lambda: DF.soft_margin_loss(ds.zeros(3), ds.zeros(3), reduction="avg"), ValueError),
    (lambda: DF.margin_ranking_loss(ds.zeros(3), ds.zeros(3, 1), ds.zeros(3)), ValueError),
    (lambda: DF.triplet_margin_loss(ds.zeros(2, 3), ds.zeros(2, 3), ds.zeros(3)), ValueError),
    (lambda: DF.triplet_margin_loss(ds.zeros(2, 3), ds.zeros(2, 3), ds.zeros(2, 3), margin=0),
     ValueError),
    (lambda: DF.gaussian_nll_loss(ds.zeros(4, 5), ds.zeros(4, 5), ds.ones(3)), ValueError),
    (lambda: DF.gaussian_nll_loss(ds.zeros(4, 5), ds.zeros(4, 5), -ds.ones(4, 5)), ValueError),
    (lambda: DF.multi_margin_loss(ds.zeros(4, 5), ds.zeros(4, dtype=ds.int64), p=3),
     ValueError),
    (lambda: DF.cosine_embedding_loss(ds.zeros(2, 3, 4), ds.zeros(2, 3, 4), ds.ones(2)),
     ValueError),
    (lambda: DF.pdist(ds.zeros(2, 3, 4)), ValueError),
    (lambda: DF.pixel_shuffle(ds.zeros(1, 3, 2, 2), 2), ValueError),
    (lambda: DF.pixel_unshuffle(ds.zeros(1, 3, 3, 2), 2), ValueError),
    (lambda: DF.channel_shuffle(ds.zeros(1, 5, 2), 2), ValueError),
    (lambda: DF.unfold(ds.zeros(1, 1, 2, 2), 3), ValueError),
    (lambda: DF.fold(ds.zeros(1, 4, 5), (3, 3), 2), ValueError),
    (lambda: DF.conv_transpose2d(ds.zeros(1, 2, 3, 3), ds.zeros(3, 1, 2, 2)), ValueError),
    (lambda: DF.interpolate(ds.zeros(1, 1, 4, 4), size=2, scale_factor=2), ValueError),
    (lambda: DF.interpolate(ds.zeros(1, 1, 4), size=2, mode="bilinear"), ValueError),
    (lambda: DF.instance_norm(ds.zeros(3, 4)), ValueError),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_functional_bad_arguments(i):
    fn, exc = BAD[i]
    with pytest.raises(exc):
        fn()
