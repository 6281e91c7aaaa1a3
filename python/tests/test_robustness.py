"""Odd inputs (empty tensors, scalars, half precision, bad arguments) raise Python
exceptions: no Rust panic and no crash of the interpreter."""

import itertools

import deepseek as ds
import deepseek.nn.functional as F

VALUES = [ds.zeros(0), ds.tensor(1.5), ds.ones(2, 3), ds.arange(6), ds.tensor([True, False]),
          ds.ones(2, 0, 3), ds.ones(3, dtype=ds.float16), ds.ones(3, dtype=ds.bfloat16)]
ARGS = [0, -1, 5, (0,), (), None, slice(None, None, 2), ds.tensor([1]), [0, 1], ...]
METHODS = ["sum", "mean", "amax", "argmax", "softmax", "log_softmax", "cumsum", "unsqueeze",
           "squeeze", "flatten", "transpose", "select", "narrow", "chunk", "split", "unbind",
           "flip", "tril", "norm", "var", "std", "max", "min", "prod", "logsumexp", "all", "any",
           "__getitem__", "view", "reshape", "expand", "repeat", "permute", "t", "item",
           "tolist", "float", "long", "__len__", "__bool__", "clamp", "pow", "exp", "gelu",
           "sort", "topk"]


def _panics(calls):
    bad = []
    for desc, f in calls:
        try:
            f()
        except BaseException as e:  # noqa: BLE001 - a PanicException is a BaseException
            if type(e).__name__ == "PanicException":
                bad.append(f"{desc}: {e}")
    return bad


def test_methods_on_odd_inputs_never_panic():
    calls = []
    for v in VALUES:
        for m in METHODS:
            for a in [()] + [(x,) for x in ARGS] + [(0, 1), (1, 0), (-1, -1)]:
                def f(v=v, m=m, a=a):
                    attr = getattr(v, m)
                    return attr(*a) if callable(attr) else attr
                calls.append((f"{tuple(v.shape)} {v.dtype} .{m}{a}", f))
    assert _panics(calls) == []


def test_binary_ops_on_odd_inputs_never_panic():
    calls = []
    for a, b in itertools.product(VALUES, repeat=2):
        for op in ["__add__", "__mul__", "__truediv__", "__matmul__", "__pow__", "__eq__",
                   "__lt__", "__floordiv__", "__mod__", "__and__"]:
            calls.append((f"{tuple(a.shape)} {op} {tuple(b.shape)}",
                          lambda a=a, b=b, op=op: getattr(a, op)(b)))
    assert _panics(calls) == []


def test_functional_on_odd_inputs_never_panic():
    fns = [F.relu, F.softmax, lambda x: F.cross_entropy(x, ds.tensor([0])),
           lambda x: F.embedding(ds.tensor([0]), x), lambda x: F.layer_norm(x, (3,)),
           lambda x: F.conv2d(x, ds.ones(1, 1, 1, 1)), lambda x: F.max_pool2d(x, 2),
           lambda x: F.pad(x, (1, 1)), lambda x: F.linear(x, ds.ones(2, 3))]
    calls = [(f"F #{i} on {tuple(v.shape)}", lambda f=f, v=v: f(v))
             for v in VALUES for i, f in enumerate(fns)]
    assert _panics(calls) == []


def test_empty_tensors_reshape_and_repeat():
    z = ds.zeros(2, 0)
    assert z.reshape(0, 2).shape == (0, 2) and z.flatten().shape == (0,)
    assert ds.ones(2, 3).repeat(1, 0).shape == (2, 0)


def test_layers_losses_and_bad_arguments_never_panic():
    """Layers on inputs of wrong rank/size, losses and index ops on mismatched or empty
    tensors, out-of-range indices, bad hyper-parameters: Python exceptions only."""
    import deepseek.nn as nn

    bad = []
    def t(desc, f):
        try:
            f()
        except BaseException as e:  # noqa: BLE001 - PanicException is a BaseException
            if type(e).__name__ == "PanicException":
                bad.append((desc, str(e)[:150]))
    ins = [ds.randn(2,3), ds.randn(2,3,4), ds.randn(1,3,5,5), ds.zeros(0,3), ds.tensor(1.0), ds.randint(0,5,(2,3)), ds.randn(2,3,0,4), ds.randn(2,3,1,1)]
    layers = [nn.Linear(3,2), nn.Conv2d(3,2,3), nn.Conv2d(3,2,3,stride=2,padding=1), nn.Conv1d(3,2,2), nn.MaxPool2d(2), nn.AvgPool2d(3), nn.AdaptiveAvgPool2d(2), nn.LayerNorm(3), nn.RMSNorm(4), nn.BatchNorm1d(3), nn.BatchNorm2d(3), nn.Embedding(5,3), nn.LSTM(3,4), nn.GRU(4,2,batch_first=True), nn.MultiheadAttention(4,2), nn.TransformerEncoderLayer(4,2,8), nn.Dropout(), nn.GELU(), nn.Softmax(1), nn.Flatten()]
    for L in layers:
        for x in ins:
            t(f"{type(L).__name__} {tuple(x.shape)}", lambda L=L, x=x: L(x))
            t(f"{type(L).__name__} eval {tuple(x.shape)}", lambda L=L, x=x: L.eval()(x))
            L.train()
    for x in ins:
        for y in ins:
            for f in [F.cross_entropy, F.nll_loss, F.mse_loss, F.l1_loss, F.binary_cross_entropy_with_logits, F.kl_div, F.smooth_l1_loss, lambda a,b: F.embedding(b, a), lambda a,b: F.scaled_dot_product_attention(a,b,b), lambda a,b: F.linear(a,b), lambda a,b: ds.cat([a,b]), lambda a,b: ds.stack([a,b]), lambda a,b: a.gather(0,b), lambda a,b: a.index_select(0,b.long().flatten()), lambda a,b: ds.where(a>0,a,b), lambda a,b: a.masked_fill(b>0, 1.0), lambda a,b: F.conv2d(a,b), lambda a,b: F.layer_norm(a, b.shape), lambda a,b: F.group_norm(a, 2), lambda a,b: a.expand(*b.shape), lambda a,b: a.view(*b.shape), lambda a, b: a.scatter_add(0, b.long(), a)]:
                t(f"{f} {tuple(x.shape)} {tuple(y.shape)}", lambda f=f, x=x, y=y: f(x, y))
    emb = nn.Embedding(5, 3)
    t("emb oob", lambda: emb(ds.tensor([7])))
    t("emb neg", lambda: emb(ds.tensor([-1])))
    t("ce oob", lambda: F.cross_entropy(ds.randn(2,3), ds.tensor([5, 0])))
    t("nll neg", lambda: F.nll_loss(ds.randn(2,3), ds.tensor([-5, 0])))
    t("onehot", lambda: F.one_hot(ds.tensor([-1])))
    t("arange", lambda: ds.arange(0, 10, 0))
    t("randint", lambda: ds.randint(5, 2, (3,)))
    t("linspace", lambda: ds.linspace(0, 1, 0))
    t("randperm0", lambda: ds.randperm(0))
    t("multinomial", lambda: ds.multinomial(ds.zeros(3), 1))
    t("pool big", lambda: F.max_pool2d(ds.randn(1,1,2,2), 5))
    t("pad big", lambda: F.pad(ds.randn(2), (1,1,1,1,1,1)))
    t("split0", lambda: ds.randn(4).split(0))
    t("chunk0", lambda: ds.randn(4).chunk(0))
    t("unflatten", lambda: ds.randn(6).unflatten(0, [4, -1]))
    t("repeat neg", lambda: ds.randn(2).repeat(-1))
    t("narrow", lambda: ds.randn(4).narrow(0, 3, 5))
    t("select", lambda: ds.randn(4).select(0, 9))
    t("full neg", lambda: ds.zeros(-1))
    t("eye", lambda: ds.eye(0))
    t("clip", lambda: nn.utils.clip_grad_norm_([], 1.0))
    t("opt", lambda: ds.optim.Adam([nn.Parameter(ds.ones(1))], lr=-1))
    t("opt2", lambda: ds.optim.Adam([nn.Parameter(ds.ones(1))], betas=(2.0, 0.9)))
    t("sched", lambda: ds.optim.lr_scheduler.StepLR(ds.optim.SGD([nn.Parameter(ds.ones(1))]), 0))
    t("cos", lambda: ds.optim.lr_scheduler.CosineAnnealingLR(ds.optim.SGD([nn.Parameter(ds.ones(1))]), 0))
    t("onecycle", lambda: ds.optim.lr_scheduler.OneCycleLR(ds.optim.SGD([nn.Parameter(ds.ones(1))], momentum=0.9), 1.0, total_steps=1))
    t("load bad", lambda: ds.load_file("/etc/hostname"))
    t("dlpack", lambda: ds.from_dlpack(5))
    t("tensor nested", lambda: ds.tensor([[1, [2]]]))
    t("bigint", lambda: ds.tensor([2**70]))
    t("float idx", lambda: ds.ones(3)[1.5])
    t("huge idx", lambda: ds.ones(3)[2**62])
    t("set bad", lambda: ds.ones(3).__setitem__(slice(None), ds.ones(5)))
    assert bad == []
