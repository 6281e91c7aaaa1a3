//! roll, diag, repeat_interleave, nonzero, masked_select, unique and scatter from Rust, with
//! the values PyTorch gives for the same calls (python/tests/test_select_ops.py compares the
//! same ops against PyTorch itself, with gradients).

use deepseek::ops::select::Repeats;
use deepseek::{DType, Tensor};

fn t(v: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}
fn f(x: &Tensor) -> Vec<f32> {
    x.to_dtype(DType::F32).unwrap().to_vec::<f32>().unwrap()
}
fn i(x: &Tensor) -> Vec<i64> {
    x.to_vec::<i64>().unwrap()
}

#[test]
fn roll_diag_repeat_interleave() {
    let x = t(&[0., 1., 2., 3., 4., 5.], &[2, 3]);
    // torch.roll(x, 1, 1) / torch.roll(x, (1, -1), (0, 1)) / torch.roll(x, 2)
    assert_eq!(f(&x.roll(&[1], &[1]).unwrap()), [2., 0., 1., 5., 3., 4.]);
    assert_eq!(
        f(&x.roll(&[1, -1], &[0, 1]).unwrap()),
        [4., 5., 3., 1., 2., 0.]
    );
    assert_eq!(f(&x.roll(&[2], &[]).unwrap()), [4., 5., 0., 1., 2., 3.]);
    assert!(x.roll(&[1, 2], &[0]).is_err());
    // torch.diag(x, 1) of a 2x3 matrix, torch.diag(v, -1) of a vector
    assert_eq!(f(&x.diag(1).unwrap()), [1., 5.]);
    let v = t(&[7., 8.], &[2]);
    let d = v.diag(-1).unwrap();
    assert_eq!(d.shape(), &[3, 3]);
    assert_eq!(f(&d), [0., 0., 0., 7., 0., 0., 0., 8., 0.]);
    assert!(Tensor::zeros(&[2, 2, 2], DType::F32)
        .unwrap()
        .diag(0)
        .is_err());
    // x.repeat_interleave(2, 1) and torch.tensor([2, 0]) along dim 0
    let r = x.repeat_interleave(&Repeats::Each(2), Some(1)).unwrap();
    assert_eq!(r.shape(), &[2, 6]);
    assert_eq!(f(&r)[..6], [0., 0., 1., 1., 2., 2.]);
    let counts = Tensor::from_vec(vec![2i64, 0], &[2]).unwrap();
    let r = x
        .repeat_interleave(&Repeats::PerElement(counts), Some(0))
        .unwrap();
    assert_eq!(f(&r), [0., 1., 2., 0., 1., 2.]);
    let neg = Tensor::from_vec(vec![-1i64], &[1]).unwrap();
    assert!(x
        .repeat_interleave(&Repeats::PerElement(neg), None)
        .is_err());
}

#[test]
fn nonzero_masked_select_unique() {
    let x = t(&[0., 1.5, 0., 2., 0., -3.], &[2, 3]);
    let nz = x.nonzero().unwrap();
    assert_eq!(nz.shape(), &[3, 2]);
    assert_eq!(i(&nz), [0, 1, 1, 0, 1, 2]);
    let mask = Tensor::from_vec(vec![true, false, true], &[3]).unwrap();
    assert_eq!(f(&x.masked_select(&mask).unwrap()), [0., 0., 2., -3.]);
    assert!(x.masked_select(&x).is_err());
    // torch.unique(torch.tensor([3, 1, 2, 3, 1, 1]), return_inverse=True, return_counts=True)
    let y = Tensor::from_vec(vec![3i64, 1, 2, 3, 1, 1], &[6]).unwrap();
    let u = y.unique(true, true).unwrap();
    assert_eq!(i(&u.values), [1, 2, 3]);
    assert_eq!(i(&u.inverse.unwrap()), [2, 0, 1, 2, 0, 0]);
    assert_eq!(i(&u.counts.unwrap()), [3, 1, 2]);
    // NaNs stay distinct, as in PyTorch.
    let n = t(&[f32::NAN, 1., f32::NAN], &[3])
        .unique(false, true)
        .unwrap();
    assert_eq!(i(&n.counts.unwrap()), [1, 1, 1]);
}

#[test]
fn scatter_overwrites_and_differentiates() {
    let x = Tensor::zeros(&[2, 3], DType::F32)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let idx = Tensor::from_vec(vec![1i64, 0, 1], &[1, 3]).unwrap();
    let src = t(&[4., 5., 6.], &[1, 3]).requires_grad_(true).unwrap();
    // torch.zeros(2, 3).scatter(0, [[1, 0, 1]], [[4, 5, 6]])
    let y = x.scatter(0, &idx, &src).unwrap();
    assert_eq!(f(&y), [0., 5., 0., 4., 0., 6.]);
    y.mul(&t(&[1., 2., 3., 4., 5., 6.], &[2, 3]))
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    // The overwritten places pass no gradient to self; src gets the gathered weights.
    assert_eq!(f(&x.grad().unwrap()), [1., 0., 3., 0., 5., 0.]);
    assert_eq!(f(&src.grad().unwrap()), [4., 2., 6.]);
    let v = Tensor::zeros(&[2, 3], DType::F32)
        .unwrap()
        .scatter_value(1, &Tensor::from_vec(vec![2i64], &[1, 1]).unwrap(), 9.0)
        .unwrap();
    assert_eq!(f(&v), [0., 0., 9., 0., 0., 0.]);
    let bad = Tensor::from_vec(vec![5i64, 0, 0], &[1, 3]).unwrap();
    assert!(x.detach().scatter(0, &bad, &src.detach()).is_err());
}

/// scatter_add / index_add return a new tensor and leave their base alone, also when the
/// caller's handle is the only one (the kernels write a base in place only when nothing can
/// see it: a fresh zeros inside a backward). The backward of gather / index_select (which use
/// that in-place path) still gives PyTorch's gradients, and with create_graph a graph.
#[test]
fn scatter_add_and_index_add_leave_the_base_alone() {
    let base = t(&[1., 2., 3., 4.], &[2, 2]);
    let idx = Tensor::from_vec(vec![1i64, 0, 0, 0], &[2, 2]).unwrap();
    let src = t(&[10., 20., 30., 40.], &[2, 2]);
    let y = base.scatter_add(0, &idx, &src).unwrap();
    assert_eq!(f(&base), [1., 2., 3., 4.]);
    // torch.tensor([[1.,2],[3,4]]).scatter_add(0, [[1,0],[0,0]], [[10.,20],[30,40]])
    assert_eq!(f(&y), [31., 62., 13., 4.]);
    let rows = Tensor::from_vec(vec![1i64, 1], &[2]).unwrap();
    let z = base.index_add(0, &rows, &src).unwrap();
    assert_eq!(f(&base), [1., 2., 3., 4.]);
    assert_eq!(f(&z), [1., 2., 43., 64.]);

    // d/dx sum(gather(x, 1, [[0, 0], [1, 0]]) * w): w summed into the picked positions.
    let x = t(&[1., 2., 3., 4.], &[2, 2]).requires_grad_(true).unwrap();
    let gi = Tensor::from_vec(vec![0i64, 0, 1, 0], &[2, 2]).unwrap();
    let w = t(&[1., 2., 3., 4.], &[2, 2]);
    x.gather(1, &gi)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap()
        .backward()
        .unwrap();
    assert_eq!(f(&x.grad().unwrap()), [3., 0., 4., 3.]);
    // With create_graph (w requiring grad) the gradient carries a graph: d/dw sum(dx) = 1.
    let x = t(&[1., 2., 3., 4.], &[2, 2]).requires_grad_(true).unwrap();
    let w = t(&[1., 2., 3., 4.], &[2, 2]).requires_grad_(true).unwrap();
    let y = x
        .index_select(0, &rows)
        .unwrap()
        .mul(&w)
        .unwrap()
        .sum_all()
        .unwrap();
    let g = deepseek::autograd::grad(&[y], std::slice::from_ref(&x), &[None], true, true).unwrap();
    let g0 = g[0].clone().unwrap();
    assert_eq!(f(&g0), [0., 0., 4., 6.]);
    assert!(g0.requires_grad());
    g0.sum_all().unwrap().backward().unwrap();
    assert_eq!(f(&w.grad().unwrap()), [1., 1., 1., 1.]);
}

/// `Tensor::binary_`: in-place add/sub/mul/div in one pass over the tensor's own buffer
/// (views see it, the version counts it), equal to the out-of-place op; the aliased, the
/// broadcast, the non-contiguous and the integer cases take the general path.
#[test]
fn binary_inplace_updates_the_buffer_like_the_out_of_place_op() -> deepseek::Result<()> {
    use deepseek::ops::BinaryOp;
    deepseek::set_num_threads(2);
    for n in [5usize, 100_000] {
        let x0 = Tensor::randn(&[n, 3], DType::F32)?;
        let b = Tensor::randn(&[n, 3], DType::F32)?;
        let x = x0.contiguous_copy()?;
        let view = x.narrow(0, 1, n - 1)?;
        let v0 = x.version();
        x.binary_(BinaryOp::Sub, &b, 0.5)?;
        assert!(x.version() > v0);
        let want = x0.sub(&b.mul_scalar(0.5)?)?;
        let d = x.sub(&want)?.abs()?.max_all()?.item()?;
        assert!(d <= 1e-6, "sub_ with alpha differs by {d}");
        assert_eq!(
            view.to_vec::<f32>()?,
            x.narrow(0, 1, n - 1)?.to_vec::<f32>()?
        );
        // operand = the tensor itself; a broadcast row; a 0-d scalar; a transposed target
        let y = x.contiguous_copy()?;
        y.binary_(BinaryOp::Add, &y, 1.0)?;
        assert_eq!(y.to_vec::<f32>()?, x.mul_scalar(2.0)?.to_vec::<f32>()?);
        let row = Tensor::from_vec(vec![1.0f32, 2.0, 4.0], &[3])?;
        let z = x.contiguous_copy()?;
        z.binary_(BinaryOp::Div, &row, 1.0)?;
        assert_eq!(z.to_vec::<f32>()?, x.div(&row)?.to_vec::<f32>()?);
        let t = x.contiguous_copy()?;
        t.t()?
            .binary_(BinaryOp::Mul, &Tensor::full(&[], 3.0, DType::F32)?, 1.0)?;
        assert_eq!(t.to_vec::<f32>()?, x.mul_scalar(3.0)?.to_vec::<f32>()?);
    }
    let i = Tensor::from_vec(vec![1i64, 2, 3], &[3])?;
    i.binary_(
        BinaryOp::Mul,
        &Tensor::from_vec(vec![2i64, 2, 2], &[3])?,
        1.0,
    )?;
    assert_eq!(i.to_vec::<i64>()?, vec![2, 4, 6]);
    // errors: alpha with mul, a shape that does not broadcast to the target, a leaf that
    // requires grad while grad mode is on
    let x = Tensor::ones(&[3], DType::F32)?;
    assert!(x.binary_(BinaryOp::Mul, &x, 2.0).is_err());
    assert!(x
        .binary_(BinaryOp::Add, &Tensor::ones(&[2, 3], DType::F32)?, 1.0)
        .is_err());
    let w = Tensor::ones(&[3], DType::F32)?.requires_grad_(true)?;
    assert!(w.binary_(BinaryOp::Add, &x, 1.0).is_err());
    {
        let _g = deepseek::no_grad();
        w.binary_(BinaryOp::Add, &x, -0.5)?;
    }
    assert_eq!(w.to_vec::<f32>()?, vec![0.5, 0.5, 0.5]);
    Ok(())
}
