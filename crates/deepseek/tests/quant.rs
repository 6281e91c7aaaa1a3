//! INT8 kernels and dynamic quantization: every kernel this CPU runs equals the scalar
//! reference bit for bit; the quantized Linear stays within its quantization error of the f32
//! Linear; bad input is an error, never a panic. (The comparison with PyTorch's
//! `quantize_dynamic` is in python/tests/test_quantization.py.)

use deepseek::quant::{
    choose_qparams, gemm_u8i8, gemm_u8i8_reference, quantize_weight_i8, DynamicQuantLinear, Isa,
    PackedI8,
};
use deepseek::Tensor;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }
}

#[test]
fn kernels_equal_the_scalar_reference_exactly() {
    let mut r = Rng(0x9E37_79B9_7F4A_7C15);
    let isas = Isa::available_all();
    assert!(isas.contains(&Isa::Scalar));
    eprintln!("int8 kernels on this CPU: {isas:?}, best {:?}", Isa::best());
    // Odd sizes hit every tail: rows not a multiple of the tile, columns not a multiple of
    // 16/64, k not a multiple of 4; the large one goes multi-threaded.
    for &(m, n, k) in &[
        (1, 1, 1),
        (2, 3, 5),
        (3, 17, 7),
        (5, 33, 13),
        (7, 70, 3),
        (9, 129, 260),
        (4, 64, 4),
        (13, 100, 64),
        (64, 256, 1024),
    ] {
        let a: Vec<u8> = (0..m * k).map(|_| r.next() as u8).collect();
        let w: Vec<i8> = (0..n * k).map(|_| r.next() as i8).collect();
        // extremes too: 255 × −128 everywhere must not saturate
        let mut a = a;
        let mut w = w;
        if m * k > 8 {
            a[..4].fill(255);
            w[..4].fill(-128);
        }
        let mut want = vec![0i32; m * n];
        gemm_u8i8_reference(m, n, k, &a, k, &w, &mut want, n);
        let p = PackedI8::pack(&w, n, k).unwrap();
        assert_eq!(p.unpack(), w);
        for &isa in &isas {
            let mut c = vec![i32::MIN; m * n];
            gemm_u8i8(isa, m, &a, k, &p, &mut c, n).unwrap();
            assert_eq!(c, want, "{isa:?} m={m} n={n} k={k}");
        }
    }
}

#[test]
fn strided_operands() {
    let (m, n, k, lda, ldc) = (6, 20, 9, 15, 23);
    let mut r = Rng(7);
    let a: Vec<u8> = (0..m * lda).map(|_| r.next() as u8).collect();
    let w: Vec<i8> = (0..n * k).map(|_| r.next() as i8).collect();
    let mut want = vec![-1i32; m * ldc];
    gemm_u8i8_reference(m, n, k, &a, lda, &w, &mut want, ldc);
    let p = PackedI8::pack(&w, n, k).unwrap();
    for isa in Isa::available_all() {
        let mut c = vec![-1i32; m * ldc];
        gemm_u8i8(isa, m, &a, lda, &p, &mut c, ldc).unwrap();
        assert_eq!(c, want, "{isa:?}");
    }
}

#[test]
fn qparams_follow_pytorch() {
    // values checked against torch.ao.quantization.utils / fbgemm ChooseQuantizationParams
    let q = choose_qparams(-1.0, 3.0, 0, 255, false).unwrap();
    assert!((q.scale - 4.0 / 255.0).abs() < 1e-9);
    assert_eq!(q.zero_point, 64);
    let q = choose_qparams(0.5, 2.0, 0, 255, true).unwrap();
    assert!((q.scale - 2.0 / 127.0).abs() < 1e-9);
    assert_eq!(q.zero_point, 0);
    let q = choose_qparams(0.0, 0.0, 0, 255, true).unwrap();
    assert_eq!((q.scale, q.zero_point), (0.1, 0));
    assert!(choose_qparams(f32::NAN, 1.0, 0, 255, true).is_err());
    assert!(choose_qparams(2.0, 1.0, 0, 255, true).is_err());
    // symmetric weights: amax / 127.5, per channel
    let (q, s) = quantize_weight_i8(&[1.0, -0.5, 0.0, 0.25], 2, 2, true, "t").unwrap();
    assert_eq!(s, vec![1.0 / 127.5, 0.25 / 127.5]);
    assert_eq!(q, vec![127, -64, 0, 127]);
}

#[test]
fn quantized_linear_is_close_to_f32() {
    let mut r = Rng(42);
    let (m, k, n) = (8, 96, 40);
    let w: Vec<f32> = (0..n * k).map(|_| r.f() * 0.1).collect();
    let b: Vec<f32> = (0..n).map(|_| r.f()).collect();
    let x: Vec<f32> = (0..m * k).map(|_| r.f() * 2.0).collect();
    let wt = Tensor::from_vec(w.clone(), &[n, k]).unwrap();
    let bt = Tensor::from_vec(b.clone(), &[n]).unwrap();
    let xt = Tensor::from_vec(x.clone(), &[2, 4, k]).unwrap();
    let want = xt.linear(&wt, Some(&bt)).unwrap().to_vec::<f32>().unwrap();
    for per_channel in [false, true] {
        let q = DynamicQuantLinear::from_float(&wt, Some(&bt), per_channel).unwrap();
        let mut outs = Vec::new();
        for isa in Isa::available_all() {
            let y = q.clone().with_isa(isa).unwrap().forward(&xt).unwrap();
            assert_eq!(y.shape(), &[2, 4, n]);
            outs.push(y.to_vec::<f32>().unwrap());
        }
        // every kernel gives the same floats
        for o in &outs[1..] {
            assert_eq!(o, &outs[0]);
        }
        // error bound: |x| ≤ 2 quantized with step ~4/127, |w| ≤ 0.1 with step ~0.2/255
        let max_err = want
            .iter()
            .zip(&outs[0])
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(
            max_err < 0.05,
            "per_channel={per_channel}: max error {max_err}"
        );
        assert!(max_err > 0.0);
    }
}

#[test]
fn bad_input_is_an_error() {
    let nan = Tensor::from_vec(vec![1.0f32, f32::NAN, 0.5, 0.1], &[2, 2]).unwrap();
    let e = DynamicQuantLinear::from_float(&nan, None, false).unwrap_err();
    assert!(e.to_string().contains("non-finite"), "{e}");
    let zeros = Tensor::from_vec(vec![0.0f32; 6], &[2, 3]).unwrap();
    let e = DynamicQuantLinear::from_float(&zeros, None, true).unwrap_err();
    assert!(e.to_string().contains("all zeros"), "{e}");
    let w = Tensor::from_vec(vec![1.0f32, -1.0, 0.5, 0.1, 0.0, 0.0], &[3, 2]).unwrap();
    // a pruned (all-zero) row is fine per channel
    let q = DynamicQuantLinear::from_float(&w, None, true).unwrap();
    let e = q
        .forward(&Tensor::from_vec(vec![1.0f32; 3], &[1, 3]).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("in_features"), "{e}");
    let e = q
        .forward(&Tensor::from_vec(vec![1.0f32, f32::INFINITY], &[1, 2]).unwrap())
        .unwrap_err();
    assert!(e.to_string().contains("non-finite"), "{e}");
    let bad_bias = Tensor::from_vec(vec![1.0f32; 2], &[2]).unwrap();
    assert!(DynamicQuantLinear::from_float(&w, Some(&bad_bias), false).is_err());
    let ints = Tensor::from_vec(vec![1i64, 2], &[1, 2]).unwrap();
    assert!(DynamicQuantLinear::from_float(&ints, None, false).is_err());
    // buffers too short for the gemm
    let p = PackedI8::pack(&[1, 2, 3, 4], 2, 2).unwrap();
    let mut c = vec![0; 4];
    assert!(gemm_u8i8(Isa::Scalar, 2, &[1, 2, 3], 2, &p, &mut c, 2).is_err());
    assert!(PackedI8::pack(&[1, 2, 3], 2, 2).is_err());
    assert!(Isa::from_name("avx9000").is_err());
}

#[test]
fn from_int8_rebuilds_the_same_layer() {
    let mut r = Rng(7);
    let (k, n) = (24, 10);
    let wt = Tensor::from_vec((0..n * k).map(|_| r.f()).collect::<Vec<f32>>(), &[n, k]).unwrap();
    let bt = Tensor::from_vec((0..n).map(|_| r.f()).collect::<Vec<f32>>(), &[n]).unwrap();
    let xt = Tensor::from_vec((0..3 * k).map(|_| r.f()).collect::<Vec<f32>>(), &[3, k]).unwrap();
    for per_channel in [false, true] {
        let q = DynamicQuantLinear::from_float(&wt, Some(&bt), per_channel).unwrap();
        let bias = q.bias().map(|b| b.to_vec());
        let scales = q.weight_scales().to_vec();
        let again =
            DynamicQuantLinear::from_int8(&q.weight_int8(), n, k, scales, per_channel, bias)
                .unwrap();
        assert_eq!(again.weight_int8(), q.weight_int8());
        assert_eq!(again.weight_scales(), q.weight_scales());
        assert_eq!(
            again.forward(&xt).unwrap().to_vec::<f32>().unwrap(),
            q.forward(&xt).unwrap().to_vec::<f32>().unwrap()
        );
    }
    let q8 = vec![1i8; n * k];
    // wrong sizes, a bad scale, a bad bias
    assert!(DynamicQuantLinear::from_int8(&q8[1..], n, k, vec![0.1], false, None).is_err());
    assert!(DynamicQuantLinear::from_int8(&q8, n, k, vec![0.1; 2], false, None).is_err());
    assert!(DynamicQuantLinear::from_int8(&q8, n, k, vec![0.1], true, None).is_err());
    assert!(DynamicQuantLinear::from_int8(&q8, n, k, vec![0.0], false, None).is_err());
    let e = DynamicQuantLinear::from_int8(&q8, n, k, vec![0.1], false, Some(vec![1.0; 3]));
    assert!(e.unwrap_err().to_string().contains("bias"));
    let nan_bias = Some(vec![f32::NAN; n]);
    assert!(DynamicQuantLinear::from_int8(&q8, n, k, vec![0.1], false, nan_bias).is_err());
}
