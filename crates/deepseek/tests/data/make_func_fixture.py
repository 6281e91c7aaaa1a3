"""Writes func_torch.json, the torch.func reference of the Rust `deepseek::func` tests
(crates/deepseek/tests/func.rs): grad, vjp, jvp, jacrev and hessian of a few closures, in
float64. Run from this directory with PyTorch installed."""
import json

import torch
from torch.func import grad, hessian, jacrev, jvp, vjp

torch.manual_seed(0)
d = torch.float64
x = torch.randn(3, 2, dtype=d)
a = torch.randn(2, 3, dtype=d)
w = torch.randn(3, 2, dtype=d)
v = torch.randn(2, 2, dtype=d)
ta, tw = torch.randn(2, 3, dtype=d), torch.randn(3, 2, dtype=d)
s = torch.randn(4, dtype=d)


def f1(x):  # scalar
    return (torch.tanh(x) * x ** 2).sum()


def f2(a, w):  # matrix
    return torch.sin(a @ w)


def f3(s):  # vector
    return torch.log_softmax(s, dim=-1) * torch.exp(s)


out = {
    "x": x, "a": a, "w": w, "v": v, "ta": ta, "tw": tw, "s": s,
    "f1_grad": grad(f1)(x),
    "f1_hessian": hessian(f1)(x),
    "f2_out": f2(a, w),
    "f2_vjp_a": vjp(f2, a, w)[1](v)[0],
    "f2_vjp_w": vjp(f2, a, w)[1](v)[1],
    "f2_jvp": jvp(f2, (a, w), (ta, tw))[1],
    "f2_jac_a": jacrev(f2, argnums=0)(a, w),
    "f2_jac_w": jacrev(f2, argnums=1)(a, w),
    "f3_jac": jacrev(f3)(s),
    "f3_hessian_sum": hessian(lambda s: f3(s).sum())(s),
}
# Second derivatives through conv2d (its double backward), two geometries: stride 2 with
# padding (the last input row unused), and dilation 2 with 2 groups.
F = torch.nn.functional
for name, (stride, pad, dil, groups, xs, ws) in {
        "c1": (2, 1, 1, 1, (1, 2, 6, 5), (3, 2, 3, 2)),
        "c2": (1, 0, 2, 2, (1, 4, 6, 6), (2, 2, 2, 3))}.items():
    cx, cw = torch.randn(*xs, dtype=d), torch.randn(*ws, dtype=d)

    def fc(cx, cw, stride=stride, pad=pad, dil=dil, groups=groups):
        return torch.tanh(F.conv2d(cx, cw, None, stride, pad, dil, groups)).pow(2).sum()
    out[name + "_x"], out[name + "_w"] = cx, cw
    out[name + "_hess_w"] = hessian(fc, argnums=1)(cx, cw)
    out[name + "_hess_x"] = hessian(fc, argnums=0)(cx, cw)
    out[name + "_hess_xw"] = jacrev(grad(fc, argnums=0), argnums=1)(cx, cw)

with open("func_torch.json", "w") as f:
    json.dump({k: {"shape": list(t.shape), "data": t.flatten().tolist()} for k, t in out.items()},
              f)
print(len(out), "tensors")
