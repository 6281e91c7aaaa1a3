//! Convolutions (conv1d, conv2d with stride, padding, dilation, groups) and 2-D pooling
//! (max, average, adaptive average/max).

use super::{Conv2dAttrs, Op, Pool2dAttrs, PoolKind};
use crate::autograd::{needs_record, record1, Ctx};
use crate::error::{bail_shape, bail_value};
use crate::{backend, DType, Error, Result, Tensor};

fn geom(x: &Tensor, w: &Tensor, a: &Conv2dAttrs) -> Result<ConvGeom> {
    if x.rank() != 4 || w.rank() != 4 {
        bail_shape!(
            "conv2d",
            "expected 4-D input [N, C, H, W] and weight [O, C/groups, kh, kw], got {:?} and {:?}",
            x.shape(),
            w.shape()
        );
    }
    let (n, c, h, wd) = (x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]);
    let (o, cg, kh, kw) = (w.shape()[0], w.shape()[1], w.shape()[2], w.shape()[3]);
    if a.groups == 0 || c % a.groups != 0 || o % a.groups != 0 {
        bail_value!(
            "conv2d",
            "groups={} must divide in_channels={c} and out_channels={o}",
            a.groups
        );
    }
    if cg * a.groups != c {
        bail_shape!(
            "conv2d",
            "weight {:?} expects {} input channels (groups={}), but input {:?} has {c}",
            w.shape(),
            cg * a.groups,
            a.groups,
            x.shape()
        );
    }
    if kh == 0 || kw == 0 {
        bail_shape!(
            "conv2d",
            "kernel size must be positive, got weight of shape {:?}",
            w.shape()
        );
    }
    if a.stride.contains(&0) || a.dilation.contains(&0) {
        bail_value!(
            "conv2d",
            "stride and dilation must be positive, got {:?} and {:?}",
            a.stride,
            a.dilation
        );
    }
    let eh = a.dilation[0] * (kh - 1) + 1;
    let ew = a.dilation[1] * (kw - 1) + 1;
    if h + 2 * a.padding[0] < eh || wd + 2 * a.padding[1] < ew {
        bail_shape!(
            "conv2d",
            "kernel size {:?} (dilated {eh}x{ew}) is larger than the padded input {:?}",
            [kh, kw],
            [h + 2 * a.padding[0], wd + 2 * a.padding[1]]
        );
    }
    let ho = out_size(h, kh, a.stride[0], a.padding[0], a.dilation[0], false);
    let wo = out_size(wd, kw, a.stride[1], a.padding[1], a.dilation[1], false);
    Ok(ConvGeom {
        n,
        c,
        h,
        w: wd,
        o,
        kh,
        kw,
        ho,
        wo,
        a: *a,
    })
}

/// 2-D convolution (PyTorch's `F.conv2d`).
pub fn conv2d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Result<Tensor> {
    let a = Conv2dAttrs {
        stride,
        padding,
        dilation,
        groups,
    };
    if !x.dtype().is_float() {
        return Err(Error::dtype(
            "conv2d",
            format!("expected a floating-point input, got {}", x.dtype()),
        ));
    }
    let dt = DType::promote(x.dtype(), weight.dtype());
    let (x, w) = (x.to_dtype(dt)?, weight.to_dtype(dt)?);
    let gm = geom(&x, &w, &a)?;
    let y = backend::conv2d(&x, &w, &gm)?;
    let y = if needs_record(&[&x, &w]) {
        record1(
            Op::Conv2d(a),
            &[&x, &w],
            y,
            vec![x.clone(), w.clone()],
            false,
        )
    } else {
        y
    };
    match bias {
        Some(b) => {
            if b.shape() != [gm.o] {
                bail_shape!(
                    "conv2d",
                    "bias of shape {:?} does not match {} output channels",
                    b.shape(),
                    gm.o
                );
            }
            y.add(&b.reshape(&[1, gm.o, 1, 1])?)
        }
        None => Ok(y),
    }
}

/// 1-D convolution (PyTorch's `F.conv1d`): conv2d over a height of 1.
pub fn conv1d(
    x: &Tensor,
    weight: &Tensor,
    bias: Option<&Tensor>,
    stride: usize,
    padding: usize,
    dilation: usize,
    groups: usize,
) -> Result<Tensor> {
    if x.rank() != 3 || weight.rank() != 3 {
        bail_shape!(
            "conv1d",
            "expected 3-D input [N, C, L] and weight [O, C/groups, k], got {:?} and {:?}",
            x.shape(),
            weight.shape()
        );
    }
    let y = conv2d(
        &x.unsqueeze(2)?,
        &weight.unsqueeze(2)?,
        bias,
        [1, stride],
        [0, padding],
        [1, dilation],
        groups,
    )?;
    y.squeeze_dim(2)
}

pub(crate) fn conv2d_backward(
    a: &Conv2dAttrs,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = &grads[0] else {
        return Ok(vec![None, None]);
    };
    let (x, w) = (ctx.saved(0), ctx.saved(1));
    if ctx.create_graph {
        // Double backward: the gradients as convolutions (differentiable again).
        let dx = if ctx.needs(0) {
            Some(conv2d_input_grad(a, x.shape(), w, g)?)
        } else {
            None
        };
        let dw = if ctx.needs(1) {
            Some(conv2d_weight_grad(a, x, w.shape(), g)?)
        } else {
            None
        };
        return Ok(vec![dx, dw]);
    }
    let gm = geom(x, w, a)?;
    let (dx, dw) = backend::conv2d_backward(x, w, g, &gm, ctx.needs(0), ctx.needs(1))?;
    Ok(vec![
        if ctx.needs(0) { Some(dx) } else { None },
        if ctx.needs(1) { Some(dw) } else { None },
    ])
}

/// The gradient of conv2d with respect to its input `[N, C, H, W]`, as differentiable tensor
/// ops (a transposed convolution): the output gradient dilated by the stride, padded by
/// `dilation * (k - 1)`, correlated with the flipped, group-transposed weight; then the rows
/// and columns no window reached get zeros and the padding is cut off.
fn conv2d_input_grad(a: &Conv2dAttrs, xs: &[usize], w: &Tensor, g: &Tensor) -> Result<Tensor> {
    let (n, o, ho, wo) = (g.shape()[0], g.shape()[1], g.shape()[2], g.shape()[3]);
    let (cg, kh, kw) = (w.shape()[1], w.shape()[2], w.shape()[3]);
    let gr = a.groups;
    let (s, p, d) = (a.stride, a.padding, a.dilation);
    let mut gd = g.clone();
    if s != [1, 1] {
        gd = gd
            .reshape(&[n, o, ho, 1, wo, 1])?
            .pad_dims(
                &[(0, 0), (0, 0), (0, 0), (0, s[0] - 1), (0, 0), (0, s[1] - 1)],
                0.0,
            )?
            .reshape(&[n, o, ho * s[0], wo * s[1]])?
            .narrow(2, 0, (ho - 1) * s[0] + 1)?
            .narrow(3, 0, (wo - 1) * s[1] + 1)?;
    }
    let (fh, fw) = (d[0] * (kh - 1), d[1] * (kw - 1));
    let gd = gd.pad_dims(&[(0, 0), (0, 0), (fh, fh), (fw, fw)], 0.0)?;
    let og = o / gr;
    let wt = w
        .reshape(&[gr, og, cg, kh, kw])?
        .transpose(1, 2)?
        .reshape(&[gr * cg, og, kh, kw])?
        .flip(2)?
        .flip(3)?;
    let full = conv2d(&gd, &wt, None, [1, 1], [0, 0], d, gr)?;
    // `full` covers padded-input rows 0..F; the padded input has H + 2p rows.
    let (hp, wp) = (xs[2] + 2 * p[0], xs[3] + 2 * p[1]);
    let (rh, rw) = (hp - full.shape()[2], wp - full.shape()[3]);
    full.pad_dims(&[(0, 0), (0, 0), (0, rh), (0, rw)], 0.0)?
        .narrow(2, p[0], xs[2])?
        .narrow(3, p[1], xs[3])
}

/// The gradient of conv2d with respect to its weight `[O, C/groups, kh, kw]`, as a
/// differentiable convolution of the padded input (batch and channels swapped) with the
/// output gradient as the kernel (stride and dilation swapped), per group.
fn conv2d_weight_grad(a: &Conv2dAttrs, x: &Tensor, ws: &[usize], g: &Tensor) -> Result<Tensor> {
    let (n, c) = (x.shape()[0], x.shape()[1]);
    let (o, ho, wo) = (g.shape()[1], g.shape()[2], g.shape()[3]);
    let (gr, kh, kw) = (a.groups, ws[2], ws[3]);
    let (cg, og) = (c / gr, o / gr);
    let p = a.padding;
    let xp = x.pad_dims(&[(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])], 0.0)?;
    let (hp, wp) = (xp.shape()[2], xp.shape()[3]);
    let xt = xp
        .reshape(&[n, gr, cg, hp, wp])?
        .permute(&[2, 1, 0, 3, 4])?
        .reshape(&[cg, gr * n, hp, wp])?;
    let gt = g
        .reshape(&[n, gr, og, ho, wo])?
        .permute(&[1, 2, 0, 3, 4])?
        .reshape(&[gr * og, n, ho, wo])?;
    let r = conv2d(&xt, &gt, None, a.dilation, [0, 0], a.stride, gr)?; // [Cg, O, >=kh, >=kw]
    r.narrow(2, 0, kh)?.narrow(3, 0, kw)?.transpose(0, 1)
}

fn pool(x: &Tensor, a: Pool2dAttrs) -> Result<Tensor> {
    let name = Op::Pool2d(a.clone()).name();
    let (x, unbatched) = match x.rank() {
        3 => (x.unsqueeze(0)?, true),
        4 => (x.clone(), false),
        _ => bail_shape!(name, "expected 3-D or 4-D input, got {:?}", x.shape()),
    };
    let (h, w) = (x.shape()[2], x.shape()[3]);
    let (ho, wo) = match a.adaptive {
        Some(o) => (o[0], o[1]),
        None => {
            if a.dilation.contains(&0) {
                bail_value!(name, "dilation must be positive, got {:?}", a.dilation);
            }
            if a.kernel.contains(&0) || a.stride.contains(&0) {
                bail_value!(
                    name,
                    "kernel_size and stride must be positive, got {:?} and {:?}",
                    a.kernel,
                    a.stride
                );
            }
            for d in 0..2 {
                if a.padding[d] * 2 > a.kernel[d] {
                    bail_value!(name, "pad should be at most half of effective kernel size, but got pad={:?} and kernel_size={:?}", a.padding, a.kernel);
                }
            }
            let eh = a.dilation[0] * (a.kernel[0] - 1) + 1;
            let ew = a.dilation[1] * (a.kernel[1] - 1) + 1;
            if h + 2 * a.padding[0] < eh || w + 2 * a.padding[1] < ew {
                bail_shape!(
                    name,
                    "kernel {:?} is larger than the padded input of shape {:?}",
                    a.kernel,
                    x.shape()
                );
            }
            (
                out_size(
                    h,
                    a.kernel[0],
                    a.stride[0],
                    a.padding[0],
                    a.dilation[0],
                    a.ceil_mode,
                ),
                out_size(
                    w,
                    a.kernel[1],
                    a.stride[1],
                    a.padding[1],
                    a.dilation[1],
                    a.ceil_mode,
                ),
            )
        }
    };
    let (y, idx) = backend::pool2d(&x, ho, wo, &a)?;
    let y = if needs_record(&[&x]) {
        let saved = if a.kind == PoolKind::Max {
            vec![idx.reshape(&[x.shape()[0] * x.shape()[1], ho * wo])?]
        } else {
            vec![]
        };
        record1(Op::Pool2d(a), &[&x], y, saved, false)
    } else {
        y
    };
    if unbatched {
        y.squeeze_dim(0)
    } else {
        Ok(y)
    }
}

pub(crate) fn pool2d_backward(
    a: &Pool2dAttrs,
    ctx: &Ctx,
    grads: &[Option<Tensor>],
) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = &grads[0] else {
        return Ok(vec![None]);
    };
    let s = ctx.input_shape(0).to_vec();
    match a.kind {
        PoolKind::Max => {
            let idx = ctx.saved(0);
            let (nc, hw) = (s[0] * s[1], s[2] * s[3]);
            let g2 = g.reshape(&[nc, idx.shape()[1]])?;
            let dx = Tensor::zeros(&[nc, hw], g.dtype())?.scatter_add(1, idx, &g2)?;
            Ok(vec![Some(dx.reshape(&s)?)])
        }
        PoolKind::Avg { .. } => {
            ctx.no_double_backward("avg_pool2d")?;
            Ok(vec![Some(backend::avg_pool2d_backward(g, &s, a)?)])
        }
    }
}

/// Max pooling (PyTorch's `F.max_pool2d`).
pub fn max_pool2d(
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    dilation: [usize; 2],
    ceil_mode: bool,
) -> Result<Tensor> {
    pool(
        x,
        Pool2dAttrs {
            kind: PoolKind::Max,
            kernel,
            stride,
            padding,
            dilation,
            ceil_mode,
            adaptive: None,
        },
    )
}

/// Average pooling (PyTorch's `F.avg_pool2d`).
pub fn avg_pool2d(
    x: &Tensor,
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: Option<usize>,
) -> Result<Tensor> {
    let y = pool(
        x,
        Pool2dAttrs {
            kind: PoolKind::Avg {
                count_include_pad: true,
            },
            kernel,
            stride,
            padding,
            dilation: [1, 1],
            ceil_mode,
            adaptive: None,
        }
        .with_count(count_include_pad),
    )?;
    match divisor_override {
        None => Ok(y),
        Some(0) => Err(Error::value("avg_pool2d", "divisor must be not zero")),
        Some(d) => {
            // Sum pooling rescaled: a window's sum is avg * its divisor; with count_include_pad
            // and no ceil overhang every window's divisor is kernel area.
            if !count_include_pad || ceil_mode || padding != [0, 0] {
                return Err(Error::value("avg_pool2d", "divisor_override is supported only with count_include_pad=True, ceil_mode=False and no padding"));
            }
            y.mul_scalar((kernel[0] * kernel[1]) as f64 / d as f64)
        }
    }
}

impl Pool2dAttrs {
    fn with_count(mut self, c: bool) -> Self {
        self.kind = PoolKind::Avg {
            count_include_pad: c,
        };
        self
    }
}

/// Adaptive average pooling to `output_size` (PyTorch's `F.adaptive_avg_pool2d`).
pub fn adaptive_avg_pool2d(x: &Tensor, output_size: [usize; 2]) -> Result<Tensor> {
    pool(
        x,
        Pool2dAttrs {
            kind: PoolKind::Avg {
                count_include_pad: false,
            },
            kernel: [1, 1],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
            adaptive: Some(output_size),
        },
    )
}

/// Adaptive max pooling to `output_size`.
pub fn adaptive_max_pool2d(x: &Tensor, output_size: [usize; 2]) -> Result<Tensor> {
    pool(
        x,
        Pool2dAttrs {
            kind: PoolKind::Max,
            kernel: [1, 1],
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            ceil_mode: false,
            adaptive: Some(output_size),
        },
    )
}

/// Geometry of one conv2d call (what every backend's conv kernels take).
#[derive(Clone, Copy)]
pub struct ConvGeom {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub ho: usize,
    pub wo: usize,
    pub a: Conv2dAttrs,
}

impl ConvGeom {
    pub(crate) fn cg(&self) -> usize {
        self.c / self.a.groups
    }
    pub(crate) fn og(&self) -> usize {
        self.o / self.a.groups
    }
    pub(crate) fn k(&self) -> usize {
        self.cg() * self.kh * self.kw
    }
    pub(crate) fn l(&self) -> usize {
        self.ho * self.wo
    }
}

/// Output size of one pooled/convolved dim.
pub fn out_size(n: usize, k: usize, s: usize, p: usize, d: usize, ceil: bool) -> usize {
    let eff = d * (k - 1) + 1;
    let span = (n + 2 * p).saturating_sub(eff);
    let mut o = if ceil { span.div_ceil(s) } else { span / s } + 1;
    if ceil && (o - 1) * s >= n + p {
        o -= 1;
    }
    o
}
