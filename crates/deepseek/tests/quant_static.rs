//! The statically quantized Linear and Conv2d (`deepseek::quant::static_q`): results within one
//! quantization step of the float computation on the dequantized values, zero-point padding,
//! and errors for bad weights, scales and inputs. (PyTorch comparisons:
//! python/tests/test_quantization_static.py.)

use deepseek::quant::{
    quantize_per_tensor, Conv2dParams, QParams, QuantizedConv2d, QuantizedLinear,
};
use deepseek::Tensor;
/// The float computation the int8 layers approximate, on dequantized values.
fn qp(scale: f32, zp: i32) -> QParams {
    QParams {
        scale,
        zero_point: zp,
    }
}

#[test]
fn linear_matches_dequantized_float_within_one_step() {
    let w: Vec<f32> = (0..12).map(|i| ((i * 7 % 11) as f32 - 5.0) * 0.1).collect();
    let wt = Tensor::from_vec(w.clone(), &[3, 4]).unwrap();
    let b = Tensor::from_vec(vec![0.1f32, -0.2, 0.05], &[3]).unwrap();
    let out = qp(0.02, 60);
    let lin = QuantizedLinear::from_float(&wt, Some(&b), true, None, out, false).unwrap();
    let xin = qp(0.05, 10);
    let xq: Vec<u8> = vec![10, 20, 30, 0, 255, 11, 9, 100];
    let y = lin
        .forward(&Tensor::from_vec(xq.clone(), &[2, 4]).unwrap(), xin)
        .unwrap()
        .to_vec::<u8>()
        .unwrap();
    let wq = lin.weight_int8();
    for i in 0..2 {
        for j in 0..3 {
            let mut s = 0.1f32 * [1.0, -2.0, 0.5][j];
            for kk in 0..4 {
                let xf = (xq[i * 4 + kk] as i32 - 10) as f32 * 0.05;
                s += xf * wq[j * 4 + kk] as f32 * lin.weight_scales()[j];
            }
            let want = ((s / 0.02).round() + 60.0).clamp(0.0, 255.0);
            assert!((y[i * 3 + j] as f32 - want).abs() <= 1.0, "{i} {j}");
        }
    }
}

#[test]
fn conv_pads_with_the_zero_point() {
    // a 1x1 image, 3x3 kernel of ones, padding 1: only the centre is real input
    let w = Tensor::from_vec(vec![1.0f32; 9], &[1, 1, 3, 3]).unwrap();
    let p = Conv2dParams {
        stride: [1, 1],
        padding: [1, 1],
        dilation: [1, 1],
        groups: 1,
    };
    let conv = QuantizedConv2d::from_float(&w, None, p, true, None, qp(0.1, 0), false).unwrap();
    // x = 1.0 quantized with zp 100, scale 0.1 → 110; padding holds 100 (= 0.0)
    let x = Tensor::from_vec(vec![110u8], &[1, 1, 1, 1]).unwrap();
    let y = conv
        .forward(&x, qp(0.1, 100))
        .unwrap()
        .to_vec::<u8>()
        .unwrap();
    assert_eq!(y, vec![10]);
}

#[test]
fn bad_input_is_an_error() {
    let w = Tensor::from_vec(vec![0.0f32; 4], &[2, 2]).unwrap();
    assert!(QuantizedLinear::from_float(&w, None, false, None, qp(0.1, 0), false).is_err());
    let w = Tensor::from_vec(vec![1.0f32, f32::NAN, 0.0, 1.0], &[2, 2]).unwrap();
    assert!(QuantizedLinear::from_float(&w, None, false, None, qp(0.1, 0), false).is_err());
    let w = Tensor::from_vec(vec![1.0f32; 4], &[2, 2]).unwrap();
    let lin = QuantizedLinear::from_float(&w, None, false, None, qp(0.1, 0), false).unwrap();
    let xf = Tensor::from_vec(vec![1.0f32; 2], &[1, 2]).unwrap();
    assert!(lin.forward(&xf, qp(0.1, 0)).is_err());
    assert!(lin
        .forward(
            &Tensor::from_vec(vec![1u8; 3], &[1, 3]).unwrap(),
            qp(0.1, 0)
        )
        .is_err());
    assert!(quantize_per_tensor(&xf, qp(0.0, 0)).is_err());
    let bad = [0.1f32, -1.0];
    assert!(QuantizedLinear::from_float(&w, None, true, Some(&bad), qp(0.1, 0), false).is_err());
    assert!(QuantizedLinear::from_float(&w, None, true, Some(&[0.1]), qp(0.1, 0), false).is_err());
    let nan = Tensor::from_vec(vec![f32::NAN], &[1]).unwrap();
    assert!(quantize_per_tensor(&nan, qp(0.1, 0)).is_err());
}

/// A direct loop over the dequantized values: the float conv the int8 one approximates.
#[allow(clippy::too_many_arguments)]
fn conv_ref(
    x: &[f32],
    (n, c, h, w): (usize, usize, usize, usize),
    wt: &[f32],
    (o, kh, kw): (usize, usize, usize),
    b: &[f32],
    p: Conv2dParams,
) -> (Vec<f32>, usize, usize) {
    let cg = c / p.groups;
    let og = o / p.groups;
    let ho = (h + 2 * p.padding[0] - p.dilation[0] * (kh - 1) - 1) / p.stride[0] + 1;
    let wo = (w + 2 * p.padding[1] - p.dilation[1] * (kw - 1) - 1) / p.stride[1] + 1;
    let mut y = vec![0f32; n * o * ho * wo];
    for img in 0..n {
        for co in 0..o {
            let g = co / og;
            for oh in 0..ho {
                for ow in 0..wo {
                    let mut s = b[co];
                    for ci in 0..cg {
                        for ki in 0..kh {
                            for kj in 0..kw {
                                let ih = (oh * p.stride[0] + ki * p.dilation[0]) as isize
                                    - p.padding[0] as isize;
                                let iw = (ow * p.stride[1] + kj * p.dilation[1]) as isize
                                    - p.padding[1] as isize;
                                if ih < 0 || iw < 0 || ih >= h as isize || iw >= w as isize {
                                    continue;
                                }
                                let xv = x
                                    [((img * c + g * cg + ci) * h + ih as usize) * w + iw as usize];
                                s += xv * wt[((co * cg + ci) * kh + ki) * kw + kj];
                            }
                        }
                    }
                    y[((img * o + co) * ho + oh) * wo + ow] = s;
                }
            }
        }
    }
    (y, ho, wo)
}

#[test]
fn conv_with_stride_dilation_groups_within_one_step() {
    let (n, c, h, w, o, kh, kw) = (2, 4, 7, 6, 6, 3, 2);
    let p = Conv2dParams {
        stride: [2, 1],
        padding: [1, 2],
        dilation: [1, 2],
        groups: 2,
    };
    let wv: Vec<f32> = (0..o * (c / 2) * kh * kw)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) * 0.03)
        .collect();
    let bv: Vec<f32> = (0..o).map(|i| i as f32 * 0.05 - 0.1).collect();
    let xq: Vec<u8> = (0..n * c * h * w).map(|i| (i * 53 % 256) as u8).collect();
    let x_qp = qp(0.02, 100);
    let out_qp = qp(0.05, 120);
    let wt = Tensor::from_vec(wv, &[o, c / 2, kh, kw]).unwrap();
    let bt = Tensor::from_vec(bv.clone(), &[o]).unwrap();
    for relu in [false, true] {
        let conv =
            QuantizedConv2d::from_float(&wt, Some(&bt), p, true, None, out_qp, relu).unwrap();
        let y = conv
            .forward(&Tensor::from_vec(xq.clone(), &[n, c, h, w]).unwrap(), x_qp)
            .unwrap();
        // reference on the dequantized input and the layer's own int8 weights
        let wq: Vec<f32> = conv
            .weight_int8()
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * conv.weight_scales()[i / ((c / 2) * kh * kw)])
            .collect();
        let xf: Vec<f32> = xq.iter().map(|&q| (q as i32 - 100) as f32 * 0.02).collect();
        let (r, ho, wo) = conv_ref(&xf, (n, c, h, w), &wq, (o, kh, kw), &bv, p);
        assert_eq!(y.shape(), &[n, o, ho, wo]);
        let yv = y.to_vec::<u8>().unwrap();
        for (a, f) in yv.iter().zip(&r) {
            let f = if relu { f.max(0.0) } else { *f };
            let want = ((f / 0.05).round() + 120.0).clamp(if relu { 120.0 } else { 0.0 }, 255.0);
            assert!((*a as f32 - want).abs() <= 1.0, "{a} vs {want}");
        }
    }
}
