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


# (class, constructor args, constructor kwargs, forward inputs)
M_CASES = [
    ("Threshold", (0.1, 20.0), {}, [X]),
    ("Hardtanh", (), {"min_val": -0.5, "max_val": 0.5}, [X]),
    ("ReLU6", (), {}, [X * 4]),
    ("Hardsigmoid", (), {}, [X * 3]),
    ("Hardswish", (), {}, [X * 3]),
    ("SELU", (), {}, [X]),
    ("CELU", (0.5,), {}, [X]),
    ("GLU", (), {"dim": 1}, [arr((3, 4, 5))]),
    ("Hardshrink", (0.4,), {}, [X]),
    ("Softshrink", (), {}, [X]),
    ("Tanhshrink", (), {}, [X]),
    ("LogSigmoid", (), {}, [X]),
    ("Softsign", (), {}, [X]),
    ("Mish", (), {}, [X]),
    ("Softmin", (), {"dim": 1}, [X]),
    ("Softmax2d", (), {}, [arr((2, 3, 4, 5))]),
    ("PReLU", (), {}, [X]),
    ("PReLU", (4,), {"init": 0.1}, [X]),
    ("SoftMarginLoss", (), {}, [arr((4, 5)), const(arr((4, 5), kind="sign"))]),
    ("MarginRankingLoss", (0.5,), {}, [arr((6,)), arr((6,), seed=2),
                                       const(arr((6,), kind="sign"))]),
    ("HingeEmbeddingLoss", (), {"reduction": "sum"}, [arr((4, 5)),
                                                     const(arr((4, 5), kind="sign"))]),
    ("CosineEmbeddingLoss", (), {"margin": 0.1}, [arr((4, 6)), arr((4, 6), seed=2),
                                                 const(arr((4,), kind="sign"))]),
    ("TripletMarginLoss", (), {"swap": True}, [arr((4, 6)), arr((4, 6), seed=2),
                                              arr((4, 6), seed=3)]),
    ("TripletMarginWithDistanceLoss", (), {"margin": 0.5}, [arr((4, 6)), arr((4, 6), seed=2),
                                                           arr((4, 6), seed=3)]),
    ("PoissonNLLLoss", (), {}, [arr((4, 5)), const(arr((4, 5), kind="pos", high=4))]),
    ("GaussianNLLLoss", (), {"full": True}, [arr((4, 5)), arr((4, 5), seed=2),
                                            arr((4, 5), kind="pos")]),
    ("MultiLabelSoftMarginLoss", (), {}, [arr((4, 5)),
                                          const(arr((4, 5), kind="bool").astype("float32"))]),
    ("MultiMarginLoss", (), {"p": 2}, [arr((4, 5)), arr((4,), kind="int", low=0, high=5)]),
    ("MultiLabelMarginLoss", (), {}, [arr((2, 4)), np.array([[3, 0, -1, 1], [1, 2, 3, -1]])]),
    ("NLLLoss2d", (), {}, [arr((2, 3, 4, 4)), arr((2, 4, 4), kind="int", low=0, high=3)]),
    ("ZeroPad2d", ((1, 2, 0, 1),), {}, [arr((2, 3, 4, 5))]),
    ("ConstantPad1d", (2, 3.5), {}, [arr((2, 3, 4))]),
    ("ConstantPad3d", (1, -1.0), {}, [arr((1, 2, 3, 2, 2))]),
    ("ReflectionPad1d", (2,), {}, [arr((2, 3, 4))]),
    ("ReflectionPad2d", ((1, 2, 2, 0),), {}, [arr((2, 3, 4, 5))]),
    ("ReflectionPad3d", (1,), {}, [arr((1, 2, 3, 3, 2))]),
    ("ReplicationPad1d", ((3, 1),), {}, [arr((3, 4))]),
    ("ReplicationPad2d", (2,), {}, [arr((2, 3, 4, 5))]),
    ("ReplicationPad3d", ((1, 0, 2, 1, 0, 1),), {}, [arr((1, 2, 3, 3, 2))]),
    ("CircularPad1d", (2,), {}, [arr((2, 3, 4))]),
    ("CircularPad2d", ((1, 2, 3, 0),), {}, [arr((2, 3, 4, 5))]),
    ("CircularPad3d", (1,), {}, [arr((1, 2, 3, 3, 2))]),
    ("ZeroPad1d", (1,), {}, [arr((2, 3))]),
    ("ZeroPad3d", (1,), {}, [arr((1, 2, 2, 2, 2))]),
    ("ConstantPad2d", (1, 2.0), {}, [arr((2, 3, 3))]),
    ("MaxPool1d", (3,), {"stride": 2, "padding": 1}, [arr((2, 3, 9))]),
    ("AvgPool1d", (2,), {}, [arr((2, 3, 8))]),
    ("AdaptiveAvgPool1d", (3,), {}, [arr((2, 3, 8))]),
    ("AdaptiveMaxPool1d", (4,), {}, [arr((2, 3, 8))]),
    ("LPPool1d", (2, 3), {}, [arr((2, 3, 9), kind="pos")]),
    ("LPPool2d", (1.5, 2), {"stride": 1}, [arr((2, 3, 4, 4), kind="pos")]),
    ("Upsample", (), {"scale_factor": 2, "mode": "bilinear"}, [arr((1, 2, 3, 4))]),
    ("UpsamplingNearest2d", (), {"scale_factor": 3}, [arr((1, 2, 3, 4))]),
    ("UpsamplingBilinear2d", (), {"size": (5, 7)}, [arr((1, 2, 3, 4))]),
    ("PixelShuffle", (3,), {}, [arr((1, 9, 2, 2))]),
    ("PixelUnshuffle", (2,), {}, [arr((1, 1, 4, 4))]),
    ("ChannelShuffle", (2,), {}, [arr((1, 4, 2, 2))]),
    ("Unfold", (3,), {"padding": 1}, [arr((2, 2, 4, 4))]),
    ("Fold", ((4, 4), 2), {}, [arr((2, 8, 9))]),
    ("ConvTranspose2d", (4, 6, 3), {"stride": 2, "padding": 1, "output_padding": 1},
     [arr((2, 4, 3, 3))]),
    ("ConvTranspose2d", (4, 6, (2, 3)), {"groups": 2, "bias": False, "dilation": 2},
     [arr((2, 4, 3, 3))]),
    ("ConvTranspose1d", (3, 4, 3), {"stride": 3}, [arr((2, 3, 5))]),
    ("InstanceNorm1d", (3,), {"affine": True}, [arr((2, 3, 6))]),
    ("InstanceNorm2d", (3,), {}, [arr((2, 3, 4, 4))]),
    ("InstanceNorm3d", (2,), {"affine": True}, [arr((2, 2, 3, 3, 2))]),
    ("LocalResponseNorm", (2,), {}, [arr((2, 4, 3, 3))]),
    ("CosineSimilarity", (), {"dim": 0}, [arr((4, 5)), arr((4, 5), seed=2)]),
    ("PairwiseDistance", (), {"p": 1.0}, [arr((4, 5)), arr((4, 5), seed=2)]),
    ("AlphaDropout", (0.2,), {}, [X]),
    ("FeatureAlphaDropout", (0.2,), {}, [X]),
    ("BatchNorm3d", (3,), {}, [arr((2, 3, 2, 3, 2))]),
    ("EmbeddingBag", (10, 3), {}, [arr((4, 3), kind="int", low=0, high=10)]),
    ("EmbeddingBag", (10, 3), {"mode": "max"}, [arr((4, 3), kind="int", low=0, high=10)]),
]


def _copy_params(m_ds, m_t):
    sd = {k: ds.tensor(v.detach().numpy().copy()) for k, v in m_t.state_dict().items()}
    m_ds.load_state_dict(sd)


@pytest.mark.parametrize("name,cargs,ckw,inputs", M_CASES, ids=_ids(M_CASES))
def test_module_matches_torch(name, cargs, ckw, inputs):
    torch.manual_seed(0)
    m_t = getattr(torch.nn, name)(*cargs, **ckw)
    m_ds = getattr(ds.nn, name)(*cargs, **ckw)
    _copy_params(m_ds, m_t)
    if name in ("AlphaDropout", "FeatureAlphaDropout"):
        m_t.eval()
        m_ds.eval()
    check(m_ds, m_t, inputs)
    if list(m_t.parameters()):
        assert [n for n, _ in m_ds.named_parameters()] == [n for n, _ in m_t.named_parameters()]
    assert list(m_ds.state_dict()) == list(m_t.state_dict())


def test_module_parameter_gradients():
    torch.manual_seed(0)
    for name, cargs, inputs in (("PReLU", (4,), [arr((3, 4, 5))]),
                                ("ConvTranspose2d", (2, 3, 2), [arr((1, 2, 3, 3))]),
                                ("EmbeddingBag", (6, 3), [arr((2, 4), kind="int", low=0,
                                                              high=6)]),
                                ("InstanceNorm1d", (2, 1e-5, 0.1, True), [arr((2, 2, 5))])):
        m_t = getattr(torch.nn, name)(*cargs)
        m_ds = getattr(ds.nn, name)(*cargs)
        _copy_params(m_ds, m_t)
        x_t, x_d = torch.tensor(inputs[0]), ds.tensor(inputs[0])
        if x_t.is_floating_point():
            x_t.requires_grad_(True)
        (m_t(x_t) ** 2).sum().backward()
        (m_ds(x_d) ** 2).sum().backward()
        for (n, p_d), (_, p_t) in zip(m_ds.named_parameters(), m_t.named_parameters()):
            np.testing.assert_allclose(p_d.grad.numpy(), p_t.grad.numpy(), rtol=1e-4,
                                       atol=1e-5, err_msg=f"{name}.{n}")


def test_embedding_bag_offsets_and_weights():
    w = arr((8, 3))
    inp = np.array([1, 2, 4, 5, 4, 3, 2, 7])
    off = np.array([0, 3, 3, 6])
    psw = arr((8,), seed=4)
    for kw in ({"mode": "sum"}, {"mode": "mean"}, {"mode": "max"},
               {"mode": "sum", "per_sample_weights": psw}, {"mode": "mean", "padding_idx": 4},
               {"mode": "sum", "include_last_offset": True}):
        # With include_last_offset the last offset ends the last bag. It is len(input) here:
        # for indices past it PyTorch's backward leaves uninitialised memory in the gradient.
        o = np.append(off, len(inp)) if kw.get("include_last_offset") else off
        check(DF.embedding_bag, TF.embedding_bag,
              [const(inp), w, const(o)], kw if "per_sample_weights" not in kw else
              {**kw, "per_sample_weights": const(psw)})


def test_instance_norm_running_stats_and_modules_with_state():
    a = arr((4, 3, 5))
    m_t = torch.nn.InstanceNorm1d(3, track_running_stats=True)
    m_d = ds.nn.InstanceNorm1d(3, track_running_stats=True)
    for _ in range(2):
        m_t(torch.tensor(a))
        m_d(ds.tensor(a))
    np.testing.assert_allclose(m_d.running_mean.numpy(), m_t.running_mean.numpy(), atol=1e-6)
    np.testing.assert_allclose(m_d.running_var.numpy(), m_t.running_var.numpy(), atol=1e-6)
    m_t.eval()
    m_d.eval()
    np.testing.assert_allclose(m_d(ds.tensor(a)).numpy(), m_t(torch.tensor(a)).numpy(),
                               rtol=1e-5, atol=1e-5)
    pd = ds.nn.ParameterDict({"b": ds.nn.Parameter(ds.zeros(2)), "a": ds.ones(3)})
    assert list(pd.keys()) == ["a", "b"] and isinstance(pd["a"], ds.nn.Parameter)
    assert [n for n, _ in pd.named_parameters()] == ["a", "b"]
    ct = ds.nn.ConvTranspose2d(2, 2, 3, stride=2)
    assert tuple(ct(ds.zeros(1, 2, 4, 4), output_size=(10, 10)).shape) == (1, 2, 10, 10)
    with pytest.raises(ValueError):
        ct(ds.zeros(1, 2, 4, 4), output_size=(12, 12))


MODULE_BAD = [
    (lambda: ds.nn.Hardtanh(1.0, -1.0), ValueError),
    (lambda: ds.nn.RReLU(0.5, 0.1), ValueError),
    (lambda: ds.nn.Threshold(0.1), TypeError),
    (lambda: ds.nn.TripletMarginLoss(margin=-1.0), ValueError),
    (lambda: ds.nn.MultiMarginLoss(p=3), ValueError),
    (lambda: ds.nn.ReflectionPad1d(4)(ds.zeros(1, 2, 3)), ValueError),
    (lambda: ds.nn.ConvTranspose2d(3, 4, 2, groups=2), ValueError),
    (lambda: ds.nn.InstanceNorm2d(3)(ds.zeros(3, 4)), ValueError),
    (lambda: ds.nn.EmbeddingBag(5, 2, mode="median"), ValueError),
    (lambda: ds.nn.Softmax2d()(ds.zeros(2, 3)), ValueError),
    (lambda: ds.nn.SoftMarginLoss(reduction="avg"), ValueError),
]


@pytest.mark.parametrize("i", range(len(MODULE_BAD)))
def test_module_bad_arguments(i):
    fn, exc = MODULE_BAD[i]
    with pytest.raises(exc):
        fn()


POOL_CASES = [
    ("max_pool3d", [arr((2, 2, 5, 4, 6))], {"kernel_size": 2}),
    ("max_pool3d", [arr((2, 5, 4, 6))], {"kernel_size": (3, 2, 2), "stride": (1, 2, 2),
                                         "padding": (1, 1, 0), "dilation": (1, 1, 2)}),
    ("max_pool3d", [arr((1, 2, 5, 5, 5))], {"kernel_size": 2, "ceil_mode": True}),
    ("avg_pool3d", [arr((2, 2, 4, 4, 6))], {"kernel_size": 2}),
    ("avg_pool3d", [arr((2, 2, 5, 4, 6))], {"kernel_size": 3, "stride": 2, "padding": 1,
                                            "count_include_pad": False}),
    ("avg_pool3d", [arr((1, 2, 5, 5, 5))], {"kernel_size": 2, "ceil_mode": True}),
    ("avg_pool3d", [arr((1, 2, 4, 4, 4))], {"kernel_size": 2, "divisor_override": 3}),
    ("adaptive_avg_pool3d", [arr((2, 2, 5, 7, 4))], {"output_size": (2, 3, 4)}),
    ("adaptive_avg_pool3d", [arr((2, 5, 7, 4))], {"output_size": 3}),
    ("adaptive_max_pool3d", [arr((2, 2, 5, 7, 4))], {"output_size": (2, 3, 3)}),
    ("adaptive_max_pool3d", [arr((2, 2, 5, 7, 4))], {"output_size": 2,
                                                     "return_indices": True}),
    ("lp_pool3d", [arr((1, 2, 4, 4, 4), kind="pos")], {"norm_type": 2, "kernel_size": 2}),
    ("max_pool1d_with_indices", [arr((2, 3, 9))], {"kernel_size": 3, "stride": 2,
                                                   "padding": 1}),
    ("max_pool2d_with_indices", [arr((2, 3, 6, 7))], {"kernel_size": 2}),
    ("max_pool2d_with_indices", [arr((2, 3, 6, 7))], {"kernel_size": 3, "stride": 2,
                                                      "padding": 1, "ceil_mode": True}),
    ("max_pool3d_with_indices", [arr((1, 2, 4, 4, 5))], {"kernel_size": 2, "dilation": 2}),
    ("max_pool2d", [arr((2, 3, 6, 6))], {"kernel_size": 2, "return_indices": True}),
    ("max_pool1d", [arr((2, 3, 8))], {"kernel_size": 2, "return_indices": True}),
    ("adaptive_max_pool1d_with_indices", [arr((2, 3, 9))], {"output_size": 4}),
    ("adaptive_max_pool2d_with_indices", [arr((2, 3, 7, 5))], {"output_size": (3, 2)}),
    ("adaptive_max_pool3d_with_indices", [arr((1, 2, 5, 4, 3))], {"output_size": 2}),
    ("adaptive_max_pool2d", [arr((2, 3, 7, 5))], {"output_size": 3, "return_indices": True}),
    ("adaptive_max_pool1d", [arr((2, 3, 9))], {"output_size": 4, "return_indices": True}),
]


@pytest.mark.parametrize("name,args,kwargs", POOL_CASES, ids=_ids(POOL_CASES))
def test_pooling_matches_torch(name, args, kwargs):
    check(getattr(DF, name), getattr(TF, name), args, kwargs)


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_max_unpool_round_trip(nd):
    shape = [(2, 3, 8), (2, 3, 6, 4), (1, 2, 4, 4, 6)][nd - 1]
    a = arr(shape)
    pool_d = getattr(ds.nn, f"MaxPool{nd}d")(2, return_indices=True)
    pool_t = getattr(torch.nn, f"MaxPool{nd}d")(2, return_indices=True)
    un_d, un_t = getattr(ds.nn, f"MaxUnpool{nd}d")(2), getattr(torch.nn, f"MaxUnpool{nd}d")(2)
    v_d, i_d = pool_d(ds.tensor(a))
    v_t, i_t = pool_t(torch.tensor(a))
    np.testing.assert_array_equal(i_d.numpy(), i_t.numpy())
    check(lambda v, i: un_d(v, i), lambda v, i: un_t(v, i), [v_t.detach().numpy(),
                                                              const(i_t.numpy())])
    size = [s + 1 for s in shape[2:]]
    check(lambda v, i: un_d(v, i, output_size=size), lambda v, i: un_t(v, i, output_size=size),
          [v_t.detach().numpy(), const(i_t.numpy())])
    with pytest.raises((ValueError, IndexError)):
        un_d(v_d, i_d, output_size=[s * 3 for s in shape[2:]])


POOL_MODULES = [
    ("MaxPool3d", (2,), {"stride": 1}, [arr((1, 2, 4, 4, 3))]),
    ("AvgPool3d", (2,), {"padding": 1}, [arr((1, 2, 4, 4, 3))]),
    ("AdaptiveAvgPool3d", ((1, 2, 3),), {}, [arr((1, 2, 4, 4, 5))]),
    ("AdaptiveMaxPool3d", (2,), {}, [arr((1, 2, 4, 4, 5))]),
    ("LPPool3d", (2, 2), {}, [arr((1, 2, 4, 4, 4), kind="pos")]),
    ("MaxPool2d", (2,), {"return_indices": True}, [arr((1, 2, 4, 4))]),
    ("MaxPool1d", (3,), {"return_indices": True, "stride": 2}, [arr((1, 2, 9))]),
    ("AdaptiveMaxPool2d", (3,), {"return_indices": True}, [arr((1, 2, 7, 5))]),
    ("AdaptiveMaxPool1d", (3,), {"return_indices": True}, [arr((1, 2, 7))]),
]


@pytest.mark.parametrize("name,cargs,ckw,inputs", POOL_MODULES, ids=_ids(POOL_MODULES))
def test_pool_module_matches_torch(name, cargs, ckw, inputs):
    check(getattr(ds.nn, name)(*cargs, **ckw), getattr(torch.nn, name)(*cargs, **ckw), inputs)


def test_pooling_bad_arguments_and_container():
    with pytest.raises(ValueError):
        DF.max_pool3d(ds.zeros(2, 3), 2)
    with pytest.raises(ValueError):
        DF.max_pool3d(ds.zeros(1, 1, 4, 4, 4), 2, padding=2)
    with pytest.raises(ValueError):
        DF.avg_pool3d(ds.zeros(1, 1, 2, 2, 2), 3)
    with pytest.raises(ValueError):
        DF.max_unpool2d(ds.zeros(1, 1, 2, 2), ds.zeros(1, 1, 3, 2, dtype=ds.int64), 2)
    with pytest.warns(UserWarning):
        c = ds.nn.Container(fc=ds.nn.Linear(2, 3))
    assert [n for n, _ in c.named_parameters()] == ["fc.weight", "fc.bias"]


CONV3D = [
    ("conv3d", [arr((2, 4, 5, 4, 6)), arr((6, 2, 2, 3, 2), seed=2), arr((6,), seed=3)],
     {"stride": (1, 2, 1), "padding": (1, 0, 1), "dilation": (2, 1, 1), "groups": 2}),
    ("conv3d", [arr((2, 3, 5, 4, 6)), arr((4, 3, 2, 3, 3), seed=2)], {"padding": "same"}),
    ("conv3d", [arr((3, 4, 4, 4)), arr((2, 3, 3, 3, 3), seed=2)], {"padding": "valid"}),
    ("conv_transpose3d", [arr((2, 4, 3, 2, 3)), arr((4, 3, 2, 3, 2), seed=2), arr((6,), seed=3)],
     {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2, "dilation": (1, 2, 1)}),
    ("conv_transpose3d", [arr((4, 3, 2, 3)), arr((4, 2, 2, 2, 2), seed=2)], {}),
]


@pytest.mark.parametrize("name,args,kwargs", CONV3D, ids=_ids(CONV3D))
def test_conv3d_matches_torch(name, args, kwargs):
    check(getattr(DF, name), getattr(TF, name), args, kwargs)


CONV_STRING_PADDING = [
    ("conv2d", [arr((2, 3, 6, 7)), arr((4, 3, 3, 3), seed=2), arr((4,), seed=3)],
     {"padding": "same"}),
    ("conv2d", [arr((2, 3, 6, 7)), arr((4, 3, 2, 4), seed=2)], {"padding": "same"}),
    ("conv2d", [arr((2, 4, 6, 7)), arr((4, 2, 2, 3), seed=2)],
     {"padding": "same", "dilation": (3, 2), "groups": 2}),
    ("conv2d", [arr((3, 6, 7)), arr((4, 3, 3, 2), seed=2)], {"padding": "valid"}),
    ("conv1d", [arr((2, 3, 9)), arr((4, 3, 4), seed=2), arr((4,), seed=3)],
     {"padding": "same"}),
    ("conv1d", [arr((2, 3, 9)), arr((4, 3, 3), seed=2)], {"padding": "same", "dilation": 3}),
    ("conv1d", [arr((3, 9)), arr((4, 3, 2), seed=2)], {"padding": "valid"}),
]


@pytest.mark.parametrize("name,args,kwargs", CONV_STRING_PADDING, ids=_ids(CONV_STRING_PADDING))
def test_conv_string_padding_matches_torch(name, args, kwargs):
    check(getattr(DF, name), getattr(TF, name), args, kwargs)


def test_conv_modules_same_padding_even_kernel():
    for cls, cargs, shape in (("Conv2d", (3, 4, (2, 3)), (2, 3, 5, 6)),
                              ("Conv1d", (3, 4, 4), (2, 3, 7))):
        torch.manual_seed(0)
        m_t = getattr(torch.nn, cls)(*cargs, padding="same")
        m_d = getattr(ds.nn, cls)(*cargs, padding="same")
        _copy_params(m_d, m_t)
        check(m_d, m_t, [arr(shape)])
        assert tuple(m_d(ds.tensor(arr(shape))).shape) == tuple(shape[:1]) + (4,) + shape[2:]
    with pytest.raises(ValueError, match="strided"):
        DF.conv2d(ds.zeros(1, 3, 4, 4), ds.zeros(2, 3, 3, 3), stride=2, padding="same")
    with pytest.raises(ValueError, match="padding string"):
        DF.conv1d(ds.zeros(1, 3, 4), ds.zeros(2, 3, 3), padding="full")


def test_conv3d_float64_and_modules():
    name, args, kwargs = CONV3D[0]
    check(getattr(DF, name), getattr(TF, name), f64(args), kwargs, dtype="float64")
    name, args, kwargs = CONV3D[3]
    check(getattr(DF, name), getattr(TF, name), f64(args), kwargs, dtype="float64")
    for cls, cargs, ckw, shape in (("Conv3d", (2, 4, 3), {"stride": 2, "padding": 1},
                                    (1, 2, 5, 5, 4)),
                                   ("ConvTranspose3d", (2, 4, (2, 3, 2)), {"stride": 2},
                                    (1, 2, 3, 2, 2))):
        torch.manual_seed(0)
        m_t = getattr(torch.nn, cls)(*cargs, **ckw)
        m_d = getattr(ds.nn, cls)(*cargs, **ckw)
        _copy_params(m_d, m_t)
        check(m_d, m_t, [arr(shape)])
        x = ds.tensor(arr(shape))
        m_d(x).pow(2).sum().backward()
        m_t(torch.tensor(arr(shape))).pow(2).sum().backward()
        np.testing.assert_allclose(m_d.weight.grad.numpy(), m_t.weight.grad.numpy(), rtol=1e-4,
                                   atol=1e-4)
        assert [n for n, _ in m_d.named_parameters()] == [n for n, _ in m_t.named_parameters()]
    with pytest.raises(ValueError):
        DF.conv3d(ds.zeros(1, 3, 4, 4, 4), ds.zeros(2, 2, 2, 2, 2))
    with pytest.raises(ValueError):
        DF.conv_transpose3d(ds.zeros(1, 3, 2, 2, 2), ds.zeros(2, 2, 2, 2, 2))
    with pytest.raises(ValueError):
        ds.nn.Conv3d(3, 4, 2, groups=2)


GRID = [("affine_grid", [arr((2, 2, 3)), (2, 3, 4, 5)], {"align_corners": ac}) for ac in
        (False, True)] + \
    [("affine_grid", [arr((2, 3, 4)), (2, 3, 2, 4, 5)], {"align_corners": False})] + \
    [("grid_sample", [arr((2, 3, 4, 5)), arr((2, 3, 6, 2), low=-1.3, high=1.3, seed=4)],
      {"mode": m, "padding_mode": pm, "align_corners": ac})
     for m in ("bilinear", "nearest") for pm in ("zeros", "border", "reflection")
     for ac in (False, True)]


@pytest.mark.parametrize("name,args,kwargs", GRID, ids=_ids(GRID))
def test_grid_functions_match_torch(name, args, kwargs):
    check(getattr(DF, name), getattr(TF, name), args, kwargs, rtol=1e-4, atol=1e-4)


def test_grid_sample_float64_and_bad_arguments():
    check(DF.grid_sample, TF.grid_sample, f64([arr((1, 2, 4, 5)), arr((1, 3, 3, 2), seed=4)]),
          {"align_corners": False}, dtype="float64")
    with pytest.raises(ValueError):
        DF.grid_sample(ds.zeros(1, 1, 2, 2), ds.zeros(1, 2, 2, 2), mode="area")
    with pytest.raises(ValueError):
        DF.grid_sample(ds.zeros(1, 1, 2, 2), ds.zeros(1, 2, 2, 3))
    with pytest.raises(ValueError):
        DF.affine_grid(ds.zeros(1, 2, 3), (1, 1, 2))


LAZY = [
    ("LazyLinear", (4,), {}, (2, 5)), ("LazyLinear", (3,), {"bias": False}, (2, 3, 6)),
    ("LazyConv1d", (4, 3), {"padding": 1}, (2, 3, 7)),
    ("LazyConv2d", (4, 3), {"stride": 2}, (2, 3, 7, 6)),
    ("LazyConv3d", (2, 2), {}, (1, 3, 4, 4, 3)),
    ("LazyConvTranspose1d", (4, 3), {"stride": 2}, (2, 3, 5)),
    ("LazyConvTranspose2d", (2, 3), {}, (2, 3, 4, 4)),
    ("LazyConvTranspose3d", (2, 2), {}, (1, 3, 2, 3, 2)),
    ("LazyBatchNorm1d", (), {}, (4, 3)), ("LazyBatchNorm2d", (), {"momentum": 0.2}, (2, 3, 4, 4)),
    ("LazyBatchNorm3d", (), {"affine": False}, (2, 3, 2, 2, 2)),
    ("LazyInstanceNorm1d", (), {"affine": True}, (2, 3, 6)),
    ("LazyInstanceNorm2d", (), {"track_running_stats": True}, (2, 3, 4, 4)),
    ("LazyInstanceNorm3d", (), {}, (2, 3, 2, 2, 3)),
]


@pytest.mark.parametrize("name,cargs,ckw,shape", LAZY, ids=_ids(LAZY))
def test_lazy_modules_match_torch(name, cargs, ckw, shape):
    m_t = getattr(torch.nn, name)(*cargs, **ckw)
    m_d = getattr(ds.nn, name)(*cargs, **ckw)
    assert m_d.has_uninitialized_params() and m_t.has_uninitialized_params()
    assert list(m_d.state_dict()) == list(m_t.state_dict())
    if "Norm" not in name:  # PyTorch 2.15's norm reprs show its new bias= argument
        assert repr(m_d) == repr(m_t)
    params_before = [id(p) for p in m_d.parameters()]
    a = arr(shape)
    y_t = m_t(torch.tensor(a))
    m_d(ds.tensor(a))
    assert type(m_d).__name__ == type(m_t).__name__ == getattr(torch.nn, name).cls_to_become \
        .__name__
    assert [id(p) for p in m_d.parameters()] == params_before
    assert {k: tuple(v.shape) for k, v in m_d.state_dict().items()} == \
        {k: tuple(v.shape) for k, v in m_t.state_dict().items()}
    m_t2 = getattr(torch.nn, name)(*cargs, **ckw)
    m_t2(torch.tensor(a))
    _copy_params(m_d, m_t2)
    check(m_d, m_t2, [a])
    assert y_t.shape == m_t2(torch.tensor(a)).shape


def test_uninitialized_parameter():
    p = ds.nn.UninitializedParameter()
    assert isinstance(p, ds.nn.Parameter) and repr(p) == "<UninitializedParameter>"
    with pytest.raises(RuntimeError):
        p.shape
    p.materialize((2, 3))
    assert type(p) is ds.nn.Parameter and tuple(p.shape) == (2, 3) and p.requires_grad
    b = ds.nn.UninitializedBuffer()
    b.materialize((4,))
    assert tuple(b.shape) == (4,)


CTC_X = arr((8, 3, 5))
CTC_T = np.array([[1, 2, 2, 0], [3, 1, 0, 0], [4, 4, 4, 1]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_ctc_loss_matches_torch(reduction):
    # PyTorch's ctc_loss backward assumes log_softmax inputs, so gradients are compared
    # with respect to the logits (the usual pipeline), where both are exact.
    def run(lib, F):
        return lambda x, t: F.ctc_loss(x.log_softmax(2), t, [8, 7, 6], [3, 2, 4],
                                       reduction=reduction)

    check(run(ds, DF), run(torch, TF), [CTC_X, const(CTC_T)])
    check(lambda x, t: ds.nn.CTCLoss(reduction=reduction)(x.log_softmax(2), t,
                                                          ds.tensor([8, 7, 6]),
                                                          ds.tensor([3, 2, 4])),
          lambda x, t: torch.nn.CTCLoss(reduction=reduction)(x.log_softmax(2), t,
                                                             torch.tensor([8, 7, 6]),
                                                             torch.tensor([3, 2, 4])),
          [CTC_X, const(CTC_T)])


def test_ctc_loss_variants_and_bad_arguments():
    flat = np.array([1, 2, 2, 3, 1, 0, 0, 1, 2, 3])
    check(lambda x, t: DF.ctc_loss(x.log_softmax(2), t, ds.tensor([8, 8, 7]),
                                   ds.tensor([3, 2, 5]), blank=4),
          lambda x, t: TF.ctc_loss(x.log_softmax(2), t, torch.tensor([8, 8, 7]),
                                   torch.tensor([3, 2, 5]), blank=4), [CTC_X, const(flat)])
    x1, t1 = arr((3, 1, 5)), np.array([[1, 1, 1, 1]])
    check(lambda x, t: DF.ctc_loss(x.log_softmax(2), t, [3], [4], reduction="none"),
          lambda x, t: TF.ctc_loss(x.log_softmax(2), t, [3], [4], reduction="none"),
          [x1, const(t1)], grad=False)
    check(lambda x, t: DF.ctc_loss(x.log_softmax(2), t, [3], [4], zero_infinity=True),
          lambda x, t: TF.ctc_loss(x.log_softmax(2), t, [3], [4], zero_infinity=True),
          [x1, const(t1)])
    check(lambda x, t: DF.ctc_loss(x.log_softmax(1), t, [6], [3]),
          lambda x, t: TF.ctc_loss(x.log_softmax(1), t, torch.tensor(6), torch.tensor(3)),
          [arr((6, 5)), const(np.array([1, 3, 3]))])
    lp = ds.zeros(4, 2, 3)
    with pytest.raises(ValueError):
        DF.ctc_loss(lp, ds.tensor([[1, 2], [1, 0]]), [4, 4], [2, 1], blank=5)
    with pytest.raises(ValueError):
        DF.ctc_loss(lp, ds.tensor([[1, 2], [1, 0]]), [5, 4], [2, 1])
    with pytest.raises(ValueError):
        DF.ctc_loss(lp, ds.tensor([[0, 2], [1, 1]]), [4, 4], [2, 1])
    with pytest.raises(ValueError):
        DF.ctc_loss(lp, ds.tensor([[1, 2], [1, 1]]), [4, 4], [2, 1], reduction="avg")


def test_linear_cross_entropy_matches_torch():
    x, w, b = arr((6, 4)), arr((5, 4), seed=2), arr((5,), seed=3)
    t = np.array([0, 4, 2, -100, 1, 3])
    for kw, tt in (({}, t), ({"reduction": "sum", "label_smoothing": 0.1}, t),
                   ({"weight": const(arr((5,), kind="pos")), "ignore_index": 2},
                    np.array([0, 4, 2, 2, 1, 3]))):
        check(lambda x_, w_, b_, t_, **k: DF.linear_cross_entropy(x_, w_, t_, linear_bias=b_, **k),
              lambda x_, w_, b_, t_, **k: TF.linear_cross_entropy(x_, w_, t_, linear_bias=b_, **k),
              [x, w, b, const(tt)], kw)
    check(lambda x_, w_, t_: DF.linear_cross_entropy(x_, w_, t_,
                                                     options=ds.nn.LinearCrossEntropyOptions()),
          lambda x_, w_, t_: TF.linear_cross_entropy(x_, w_, t_,
                                                     options=torch.nn.LinearCrossEntropyOptions()),
          [x, w, const(np.array([0, 1, 2, 3, 4, 0]))])
    torch.manual_seed(0)
    m_t = torch.nn.LinearCrossEntropyLoss(4, 3, out_features=(2,), bias=True)
    m_d = ds.nn.LinearCrossEntropyLoss(4, 3, out_features=(2,), bias=True)
    _copy_params(m_d, m_t)
    assert list(m_d.state_dict()) == list(m_t.state_dict())
    check(m_d, m_t, [arr((5, 4)), const(np.array([[0, 1], [2, 2], [1, 0], [0, 0], [2, 1]]))])
    with pytest.raises(ValueError):
        ds.nn.LinearCrossEntropyLoss(4, 3, label_smoothing=2.0)
    with pytest.raises(ValueError):
        DF.linear_cross_entropy(ds.zeros(2, 3), ds.zeros(5, 4), ds.tensor([0, 1]))
    with pytest.raises(ValueError):
        ds.nn.LinearCrossEntropyOptions(acc_policy="fast")


def test_fractional_max_pool_matches_torch():
    s2 = np.random.default_rng(5).random((2, 3, 2)).astype("float32")
    s3 = np.random.default_rng(6).random((1, 2, 3)).astype("float32")
    cases = [
        ("fractional_max_pool2d", [arr((2, 3, 7, 9)), 2],
         {"output_size": (4, 5), "return_indices": True, "_random_samples": const(s2)}),
        ("fractional_max_pool2d", [arr((2, 3, 8, 10)), (3, 2)],
         {"output_ratio": (0.5, 0.5), "_random_samples": const(s2)}),
        ("fractional_max_pool2d_with_indices", [arr((3, 7, 9)), 2],
         {"output_size": 4, "_random_samples": const(s2[:1])}),
        ("fractional_max_pool3d", [arr((1, 2, 6, 5, 7)), 2],
         {"output_size": (3, 2, 4), "return_indices": True, "_random_samples": const(s3)}),
        ("fractional_max_pool3d_with_indices", [arr((1, 2, 6, 5, 7)), (2, 1, 3)],
         {"output_ratio": (0.5, 0.6, 0.5), "_random_samples": const(s3)}),
    ]
    for name, args, kw in cases:
        check(getattr(DF, name), getattr(TF, name), args, kw)
    for cls, s, shape in (("FractionalMaxPool2d", s2, (2, 3, 7, 9)),
                          ("FractionalMaxPool3d", s3, (1, 2, 6, 5, 7))):
        m_d = getattr(ds.nn, cls)(2, output_size=3, _random_samples=ds.tensor(s))
        m_t = getattr(torch.nn, cls)(2, output_size=3, _random_samples=torch.tensor(s))
        check(m_d, m_t, [arr(shape)])
    ds.manual_seed(0)
    y = ds.nn.FractionalMaxPool2d(2, output_ratio=0.5)(ds.randn(1, 2, 8, 8))
    assert tuple(y.shape) == (1, 2, 4, 4)
    with pytest.raises(ValueError):
        ds.nn.FractionalMaxPool2d(2)
    with pytest.raises(ValueError):
        ds.nn.FractionalMaxPool2d(2, output_ratio=1.5)
    with pytest.raises(ValueError):
        DF.fractional_max_pool2d(ds.zeros(1, 1, 4, 4), 3, output_size=3)


def test_adaptive_log_softmax_matches_torch():
    torch.manual_seed(0)
    m_t = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 12, [3, 7], div_value=2.0, head_bias=True)
    m_d = ds.nn.AdaptiveLogSoftmaxWithLoss(8, 12, [3, 7], div_value=2.0, head_bias=True)
    _copy_params(m_d, m_t)
    assert [n for n, _ in m_d.named_parameters()] == [n for n, _ in m_t.named_parameters()]
    t = np.array([0, 5, 11, 2, 8, 3])
    check(lambda x, y: tuple(m_d(x, y)), lambda x, y: tuple(m_t(x, y)), [arr((6, 8)), const(t)])
    check(lambda x, y: tuple(m_d(x, y)), lambda x, y: tuple(m_t(x, y)),
          [arr((8,)), const(np.array(9))])
    check(m_d.log_prob, m_t.log_prob, [arr((4, 8))])
    x = arr((5, 8), seed=4)
    np.testing.assert_array_equal(m_d.predict(ds.tensor(x)).numpy(),
                                  m_t.predict(torch.tensor(x)).numpy())
    with pytest.raises(ValueError):
        ds.nn.AdaptiveLogSoftmaxWithLoss(8, 12, [7, 3])
    with pytest.raises(ValueError):
        m_d(ds.zeros(2, 8), ds.tensor([0, 12]))


@pytest.mark.parametrize("size,channels", [(3, 6), (4, 5), (5, 3), (2, 7)])
def test_cross_map_lrn2d(size, channels):
    # Forward against PyTorch; PyTorch's legacy backward is not the derivative of its own
    # forward, so the gradient is checked by central differences in float64 instead.
    m_d, m_t = ds.nn.CrossMapLRN2d(size, 0.3, 0.6, 1.5), torch.nn.CrossMapLRN2d(size, 0.3, 0.6,
                                                                                  1.5)
    check(m_d, m_t, [arr((2, channels, 3, 2))], grad=False)
    assert repr(m_d) == repr(m_t)
    a = np.random.default_rng(0).normal(size=(1, channels, 2, 2))
    c = np.random.default_rng(1).normal(size=a.shape)
    x = ds.tensor(a, requires_grad=True)
    (m_d(x) * ds.tensor(c)).sum().backward()
    fd = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        ap, am = a.copy(), a.copy()
        ap[i] += 1e-6
        am[i] -= 1e-6
        fd[i] = ((m_d(ds.tensor(ap)).numpy() - m_d(ds.tensor(am)).numpy()) * c).sum() / 2e-6
    np.testing.assert_allclose(x.grad.numpy(), fd, atol=1e-8)
    with pytest.raises(ValueError):
        m_d(ds.zeros(2, 3, 4))


INTERP_MORE = [
    ({"size": (7, 9), "mode": "bicubic"}, (2, 3, 4, 5)),
    ({"scale_factor": 1.7, "mode": "bicubic", "align_corners": True}, (1, 2, 5, 4)),
    ({"size": (3, 2), "mode": "bicubic"}, (1, 2, 6, 5)),
    ({"size": (3, 2), "mode": "area"}, (2, 3, 7, 5)),
    ({"size": 4, "mode": "area"}, (2, 3, 9)),
    ({"size": (2, 3, 2), "mode": "area"}, (1, 2, 5, 6, 3)),
]


@pytest.mark.parametrize("kw,shape", INTERP_MORE)
def test_interpolate_bicubic_and_area(kw, shape):
    check(lambda x: DF.interpolate(x, **kw), lambda x: TF.interpolate(x, **kw), [arr(shape)])
    with pytest.raises(ValueError):
        DF.interpolate(ds.zeros(1, 1, 4, 4), size=2, mode="area", align_corners=True)
