//! Bad input gives a clear `Err` naming the op and the offending shapes/dtypes/indices;
//! never a panic.

#![allow(clippy::cloned_ref_to_slice_refs, clippy::type_complexity)] // test tables read better this way

use deepseek::nn::functional as F;
use deepseek::{DType, Result, Tensor};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `f`, which must return `Err` (not panic, not `Ok`) with a message containing every
/// one of `needles`; returns the message.
#[track_caller]
fn expect_err<T: std::fmt::Debug>(
    what: &str,
    f: impl FnOnce() -> Result<T>,
    needles: &[&str],
) -> String {
    let r = catch_unwind(AssertUnwindSafe(f));
    let msg = match r {
        Err(p) => {
            let m = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panic!("{what}: PANICKED instead of returning Err: {m}")
        }
        Ok(Ok(v)) => panic!("{what}: returned Ok({v:?}) instead of an error"),
        Ok(Err(e)) => e.to_string(),
    };
    for n in needles {
        assert!(
            msg.contains(n),
            "{what}: error message {msg:?} does not mention {n:?}"
        );
    }
    msg
}

fn f32s(shape: &[usize]) -> Tensor {
    Tensor::ones(shape, DType::F32).unwrap()
}

fn i64s(v: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_vec(v.to_vec(), shape).unwrap()
}

// ------------------------------------------------------------------------------------------
// Shapes.

#[test]
fn matmul_shape_mismatch() {
    let (a, b) = (f32s(&[2, 3]), f32s(&[4, 5]));
    expect_err(
        "matmul 2-d",
        || a.matmul(&b),
        &["matmul", "[2, 3]", "[4, 5]"],
    );
    let (a, b) = (f32s(&[7, 2, 3]), f32s(&[5, 4, 2]));
    expect_err(
        "matmul batched k",
        || a.matmul(&b),
        &["matmul", "[7, 2, 3]", "[5, 4, 2]"],
    );
    let (a, b) = (f32s(&[3, 2, 3]), f32s(&[4, 3, 2]));
    expect_err(
        "matmul batch broadcast",
        || a.matmul(&b),
        &["matmul", "3", "4"],
    );
    let (a, b) = (f32s(&[3]), f32s(&[4]));
    expect_err("matmul vectors", || a.matmul(&b), &["matmul", "[3]", "[4]"]);
    let (a, b) = (f32s(&[2, 3]), f32s(&[2]));
    expect_err(
        "matmul matrix-vector",
        || a.matmul(&b),
        &["matmul", "[2, 3]", "[2]"],
    );
    let s = Tensor::scalar(1.0f32);
    expect_err("matmul 0-d", || s.matmul(&a), &["matmul", "[]", "[2, 3]"]);
    expect_err(
        "linear",
        || f32s(&[2, 3]).linear(&f32s(&[4, 5]), None),
        &["linear", "[2, 3]", "[4, 5]"],
    );
    expect_err(
        "linear bias",
        || f32s(&[2, 3]).linear(&f32s(&[4, 3]), Some(&f32s(&[5]))),
        &["[2, 4]", "[5]"],
    );
    expect_err(
        "einsum operand count",
        || Tensor::einsum("ij,jk->ik", &[f32s(&[2, 3])]),
        &["einsum", "2 operands", "1"],
    );
    expect_err(
        "einsum subscript rank",
        || Tensor::einsum("ijk->i", &[f32s(&[2, 3])]),
        &["einsum", "ijk", "[2, 3]"],
    );
    expect_err(
        "einsum size mismatch",
        || Tensor::einsum("ij,jk->ik", &[f32s(&[2, 3]), f32s(&[4, 2])]),
        &["einsum", "'j'", "3", "4"],
    );
}

#[test]
fn broadcast_mismatch() {
    let (a, b) = (f32s(&[2, 3]), f32s(&[4]));
    expect_err("add", || a.add(&b), &["add", "[2, 3]", "[4]"]);
    expect_err("mul", || a.mul(&b), &["mul", "[2, 3]", "[4]"]);
    expect_err("maximum", || a.maximum(&b), &["maximum", "[2, 3]", "[4]"]);
    expect_err("lt", || a.lt(&b), &["lt", "[2, 3]", "[4]"]);
    let cond = Tensor::from_vec(vec![true, false, true], &[3]).unwrap();
    expect_err(
        "where",
        || Tensor::where_cond(&cond, &f32s(&[2, 3]), &f32s(&[2, 4])),
        &["where", "[2, 3]", "[2, 4]"],
    );
    expect_err(
        "where non-bool condition",
        || Tensor::where_cond(&f32s(&[3]), &f32s(&[3]), &f32s(&[3])),
        &["where", "bool", "float32"],
    );
    let m = Tensor::from_vec(vec![true; 4], &[2, 2]).unwrap();
    expect_err(
        "masked_fill shape",
        || f32s(&[2, 3]).masked_fill(&m, 0.0),
        &["masked_fill", "[2, 2]", "[2, 3]"],
    );
    let m = Tensor::from_vec(vec![true; 6], &[2, 1, 3]).unwrap();
    expect_err(
        "masked_fill grows input",
        || f32s(&[2, 3]).masked_fill(&m, 0.0),
        &["masked_fill", "[2, 1, 3]", "[2, 3]"],
    );
    expect_err(
        "masked_fill float mask",
        || f32s(&[2, 3]).masked_fill(&f32s(&[2, 3]), 0.0),
        &["masked_fill", "bool"],
    );
    expect_err(
        "expand",
        || f32s(&[2, 3]).expand(&[4, 3, 2]),
        &["expand", "[2, 3]"],
    );
    expect_err(
        "expand to fewer dims",
        || f32s(&[2, 3]).expand(&[3]),
        &["expand"],
    );
    expect_err(
        "expand_as",
        || f32s(&[2, 3]).expand_as(&f32s(&[3, 3])),
        &["expand", "[2, 3]", "[3, 3]"],
    );
}

#[test]
fn cat_stack_split_mismatch() {
    expect_err(
        "cat",
        || Tensor::cat(&[f32s(&[2, 3]), f32s(&[2, 4])], 0),
        &["cat", "[2, 3]", "[2, 4]"],
    );
    expect_err(
        "cat rank",
        || Tensor::cat(&[f32s(&[2, 3]), f32s(&[2, 3, 1])], 0),
        &["cat", "[2, 3]", "[2, 3, 1]"],
    );
    expect_err("cat empty", || Tensor::cat(&[], 0), &["cat", "empty"]);
    expect_err(
        "cat dim",
        || Tensor::cat(&[f32s(&[2, 3]), f32s(&[2, 3])], 2),
        &["2", "rank 2"],
    );
    expect_err(
        "stack",
        || Tensor::stack(&[f32s(&[2, 3]), f32s(&[3, 2])], 0),
        &["stack", "[2, 3]", "[3, 2]"],
    );
    expect_err(
        "split_sizes",
        || f32s(&[5, 2]).split_sizes(&[2, 2], 0),
        &["split", "[2, 2]", "[5, 2]"],
    );
    expect_err("split 0", || f32s(&[5, 2]).split(0, 0), &["split"]);
    expect_err("chunk 0", || f32s(&[5, 2]).chunk(0, 0), &["chunk"]);
}

#[test]
fn reshape_and_view_errors() {
    let x = f32s(&[2, 3]);
    expect_err(
        "reshape",
        || x.reshape(&[4, 2]),
        &["reshape", "[4, 2]", "[2, 3]"],
    );
    expect_err(
        "reshape_infer two -1",
        || x.reshape_infer(&[-1, -1]),
        &["reshape"],
    );
    expect_err(
        "reshape_infer indivisible",
        || x.reshape_infer(&[4, -1]),
        &["reshape", "[2, 3]"],
    );
    expect_err(
        "view incompatible",
        || x.t().unwrap().view(&[6]),
        &["view", "[3, 2]", "reshape"],
    );
    expect_err(
        "permute wrong length",
        || x.permute(&[0]),
        &["permute", "[2, 3]"],
    );
    expect_err("permute repeated", || x.permute(&[0, 0]), &["permute"]);
    expect_err("t of 3-d", || f32s(&[2, 3, 4]).t(), &["t()", "[2, 3, 4]"]);
    expect_err(
        "flatten reversed",
        || f32s(&[2, 3, 4]).flatten(2, 0),
        &["flatten"],
    );
    expect_err(
        "repeat too few dims",
        || f32s(&[2, 3, 4]).repeat(&[2, 2]),
        &["repeat"],
    );
    expect_err("pad odd", || x.pad(&[1], 0.0), &["pad", "[2, 3]"]);
    expect_err(
        "pad too long",
        || x.pad(&[1, 1, 1, 1, 1, 1], 0.0),
        &["pad", "[2, 3]"],
    );
    expect_err("slice step 0", || x.slice(0, 0, 2, 0), &["slice", "step"]);
    expect_err(
        "narrow out of range",
        || x.narrow(1, 2, 2),
        &["narrow", "[2, 3]"],
    );
    expect_err(
        "select out of range",
        || x.select(0, 2),
        &["select", "2", "size 2"],
    );
    expect_err(
        "select negative out of range",
        || x.select(1, -4),
        &["select", "-4"],
    );
}

#[test]
fn dim_out_of_range() {
    let x = f32s(&[2, 3]);
    expect_err(
        "sum_dim",
        || x.sum_dim(&[2], false),
        &["sum", "dimension 2", "rank 2"],
    );
    expect_err(
        "sum_dim negative",
        || x.sum_dim(&[-3], false),
        &["sum", "-3"],
    );
    expect_err(
        "sum_dim repeated",
        || x.sum_dim(&[1, -1], false),
        &["sum", "more than once"],
    );
    expect_err("mean_dim", || x.mean_dim(&[5], true), &["mean", "5"]);
    expect_err("amax", || x.amax(&[2], true), &["amax", "2"]);
    expect_err("argmax", || x.argmax(Some(3), false), &["argmax", "3"]);
    expect_err("softmax", || x.softmax(2), &["softmax", "2"]);
    expect_err("log_softmax", || x.log_softmax(-3), &["log_softmax", "-3"]);
    expect_err("transpose", || x.transpose(0, 2), &["2", "rank 2"]);
    expect_err("unsqueeze", || x.unsqueeze(4), &["unsqueeze", "4"]);
    expect_err("squeeze_dim", || x.squeeze_dim(2), &["2"]);
    expect_err("cumsum", || x.cumsum(2), &["2"]);
    expect_err("flip", || x.flip(3), &["3"]);
    expect_err(
        "index_select dim",
        || x.index_select(2, &i64s(&[0], &[1])),
        &["2"],
    );
    expect_err(
        "gather dim",
        || x.gather(2, &i64s(&[0, 0], &[2, 1])),
        &["2"],
    );
    expect_err(
        "var_dim",
        || x.var_dim(Some(&[2]), 1.0, false),
        &["var", "2"],
    );
    expect_err("logsumexp", || x.logsumexp(&[2], false), &["2"]);
    expect_err("prod_dim", || x.prod_dim(2, false), &["prod", "2"]);
    expect_err(
        "vector_norm",
        || x.vector_norm(2.0, Some(&[2]), false),
        &["2"],
    );
    expect_err("split dim", || x.split(1, 2), &["2"]);
    expect_err("chunk dim", || x.chunk(2, -3), &["-3"]);
    expect_err("unbind dim", || x.unbind(2), &["2"]);
    expect_err(
        "stack dim",
        || Tensor::stack(&[x.clone(), x.clone()], 3),
        &["stack", "3"],
    );
    expect_err("narrow dim", || x.narrow(2, 0, 1), &["2"]);
    expect_err("slice dim", || x.slice(2, 0, 1, 1), &["2"]);
    expect_err("size", || x.size(2), &["2"]);
    expect_err("max_dim", || x.max_dim(2, false), &["2"]);
    expect_err(
        "take_along_dim dim",
        || x.take_along_dim(&i64s(&[0, 0], &[2, 1]), 2),
        &["2"],
    );
    expect_err(
        "index_add dim",
        || x.index_add(2, &i64s(&[0], &[1]), &f32s(&[2, 3, 1])),
        &["2"],
    );
    expect_err(
        "scatter_add dim",
        || x.scatter_add(2, &i64s(&[0, 0], &[2, 1]), &f32s(&[2, 1])),
        &["2"],
    );
}

// ------------------------------------------------------------------------------------------
// Indices.

#[test]
fn gather_index_out_of_range() {
    let x = f32s(&[2, 3]);
    expect_err(
        "gather",
        || x.gather(1, &i64s(&[0, 3], &[2, 1])),
        &["gather", "3", "size 3"],
    );
    expect_err(
        "gather negative",
        || x.gather(1, &i64s(&[0, -4], &[2, 1])),
        &["gather", "-4"],
    );
    expect_err(
        "gather float index",
        || x.gather(1, &f32s(&[2, 1])),
        &["gather", "float32"],
    );
    expect_err(
        "take_along_dim",
        || x.take_along_dim(&i64s(&[5, 0], &[2, 1]), 1),
        &["5"],
    );
    expect_err(
        "scatter_add index",
        || x.scatter_add(1, &i64s(&[0, 7], &[2, 1]), &f32s(&[2, 1])),
        &["scatter_add", "7"],
    );
    expect_err(
        "index_add index",
        || x.index_add(0, &i64s(&[2], &[1]), &f32s(&[1, 3])),
        &["index_add", "2"],
    );
    expect_err(
        "index_add source shape",
        || x.index_add(0, &i64s(&[1], &[1]), &f32s(&[2, 3])),
        &["index_add", "[2, 3]", "[1, 3]"],
    );
}

#[test]
fn gather_index_shape_too_large() {
    // PyTorch: index.size(d) <= input.size(d) for every d != dim.
    let x = f32s(&[2, 3]);
    expect_err(
        "gather index larger than input",
        || x.gather(1, &i64s(&[0; 6], &[3, 2])),
        &["gather", "[3, 2]", "[2, 3]"],
    );
}

#[test]
fn index_select_out_of_range() {
    let x = f32s(&[4, 3]);
    expect_err(
        "index_select",
        || x.index_select(0, &i64s(&[1, 4], &[2])),
        &["index_select", "4", "size 4"],
    );
    expect_err(
        "index_select negative",
        || x.index_select(0, &i64s(&[-5], &[1])),
        &["index_select", "-5"],
    );
    expect_err(
        "index_select 2-d index",
        || x.index_select(0, &i64s(&[0, 1], &[1, 2])),
        &["index_select", "[1, 2]"],
    );
    expect_err(
        "index_select float index",
        || x.index_select(0, &f32s(&[2])),
        &["index_select", "float32"],
    );
}

#[test]
fn embedding_errors() {
    let w = f32s(&[5, 3]);
    expect_err(
        "embedding out of range",
        || Tensor::embedding(&w, &i64s(&[0, 5], &[2]), None),
        &["Embedding", "5"],
    );
    expect_err(
        "embedding negative",
        || Tensor::embedding(&w, &i64s(&[-1], &[1]), None),
        &["Embedding", "-1"],
    );
    expect_err(
        "embedding very negative",
        || F::embedding(&i64s(&[-6], &[1]), &w, None),
        &["Embedding", "-6"],
    );
    expect_err(
        "embedding float indices",
        || Tensor::embedding(&w, &f32s(&[2]), None),
        &["Embedding", "float32"],
    );
    expect_err(
        "embedding f64 indices",
        || F::embedding(&Tensor::zeros(&[2], DType::F64).unwrap(), &w, None),
        &["Embedding", "float64"],
    );
    expect_err(
        "embedding 1-d weight",
        || Tensor::embedding(&f32s(&[5]), &i64s(&[0], &[1]), None),
        &["Embedding", "[5]"],
    );
    expect_err(
        "embedding padding_idx",
        || Tensor::embedding(&w, &i64s(&[0], &[1]), Some(5)),
        &["Embedding", "padding_idx", "5"],
    );
}

// ------------------------------------------------------------------------------------------
// Dtypes.

#[test]
fn dtype_errors() {
    let a = Tensor::from_vec(vec![1i64, 2, 3, 4], &[2, 2]).unwrap();
    expect_err(
        "matmul of int tensors",
        || a.matmul(&a),
        &["matmul", "int64"],
    );
    expect_err(
        "matmul int and float",
        || a.matmul(&f32s(&[2, 2])),
        &["matmul", "int64", "float32"],
    );
    expect_err(
        "requires_grad_ on int",
        || a.requires_grad_(true),
        &["requires_grad", "int64"],
    );
    expect_err(
        "requires_grad_ on bool",
        || {
            Tensor::from_vec(vec![true], &[1])
                .unwrap()
                .requires_grad_(true)
        },
        &["requires_grad", "bool"],
    );
    expect_err("mean of int", || a.mean_all(), &["mean", "int64"]);
    expect_err(
        "conv2d int input",
        || {
            F::conv2d(
                &a.reshape(&[1, 1, 2, 2]).unwrap(),
                &f32s(&[1, 1, 1, 1]),
                None,
                [1, 1],
                [0, 0],
                [1, 1],
                1,
            )
        },
        &["conv2d", "int64"],
    );
    expect_err(
        "cross_entropy int logits",
        || F::cross_entropy(&a, &i64s(&[0, 1], &[2]), None, -100, "mean", 0.0),
        &["cross_entropy", "int64"],
    );
    expect_err(
        "nll_loss float target",
        || F::nll_loss(&f32s(&[2, 3]), &f32s(&[2]), None, -100, "mean"),
        &["nll_loss", "float32"],
    );
    expect_err(
        "rand int dtype",
        || Tensor::rand(&[2], DType::I64),
        &["rand", "int64"],
    );
    expect_err(
        "randn int dtype",
        || Tensor::randn(&[2], DType::I32),
        &["randn", "int32"],
    );
}

#[test]
fn to_vec_wrong_type() {
    let x = f32s(&[3]);
    expect_err(
        "to_vec f64 of f32",
        || x.to_vec::<f64>(),
        &["to_vec", "float32", "float64"],
    );
    expect_err(
        "to_vec i64 of f32",
        || x.to_vec::<i64>(),
        &["to_vec", "float32", "int64"],
    );
    let b = Tensor::from_vec(vec![true, false], &[2]).unwrap();
    expect_err(
        "to_vec f32 of bool",
        || b.to_vec::<f32>(),
        &["to_vec", "bool", "float32"],
    );
}

#[test]
fn creation_errors() {
    expect_err(
        "from_vec length",
        || Tensor::from_vec(vec![1.0f32, 2.0, 3.0], &[2, 2]),
        &["from_vec", "3", "[2, 2]", "4"],
    );
    expect_err(
        "from_slice length",
        || Tensor::from_slice(&[1i64, 2], &[3]),
        &["from_vec", "[3]"],
    );
    expect_err(
        "from_f64s length",
        || Tensor::from_f64s(&[1.0], &[2], DType::F32),
        &["[2]"],
    );
    expect_err(
        "arange step 0",
        || Tensor::arange(0.0, 1.0, 0.0, DType::F32),
        &["arange", "step"],
    );
    expect_err(
        "randint high <= low",
        || Tensor::randint(3, 3, &[2], DType::I64),
        &["randint", "high"],
    );
}

#[test]
fn item_on_multi_element() {
    expect_err(
        "item",
        || f32s(&[2, 2]).item(),
        &["item", "4 elements", "[2, 2]"],
    );
    expect_err(
        "item of empty",
        || f32s(&[0]).item(),
        &["item", "0 elements"],
    );
    assert_eq!(f32s(&[1, 1]).item().unwrap(), 1.0);
}

// ------------------------------------------------------------------------------------------
// Autograd misuse.

#[test]
fn backward_errors() {
    let x = Tensor::randn(&[2, 3], DType::F32)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    let y = x.mul_scalar(2.0).unwrap();
    expect_err(
        "non-scalar backward",
        || y.backward(),
        &["scalar", "[2, 3]"],
    );
    expect_err(
        "backward with a wrong-shape gradient",
        || y.backward_with(Some(&f32s(&[3, 2])), false, false),
        &["backward", "[3, 2]", "[2, 3]"],
    );
    // twice without retain_graph
    let z = x.exp().unwrap().sum_all().unwrap();
    z.backward().unwrap();
    expect_err(
        "second backward",
        || z.backward(),
        &["second time", "retain_graph"],
    );
    // a tensor that does not require grad
    let c = f32s(&[1]).sum_all().unwrap();
    expect_err(
        "backward of a constant",
        || c.backward(),
        &["does not require grad"],
    );
    // requires_grad_(false) on a non-leaf
    let nl = x.mul_scalar(3.0).unwrap();
    expect_err(
        "requires_grad_(false) on non-leaf",
        || nl.requires_grad_(false),
        &["leaf", "detach"],
    );
    // autograd::grad of an input that does not require grad
    let k = f32s(&[2, 3]);
    let s = x.mul(&k).unwrap().sum_all().unwrap();
    expect_err(
        "grad w.r.t. a constant",
        || deepseek::autograd::grad(&[s.clone()], &[k.clone()], &[None], false, false),
        &["does not require grad"],
    );
    expect_err(
        "grad with mismatched grads list",
        || deepseek::autograd::grad(&[s.clone()], &[x.clone()], &[None, None], false, false),
        &["1 outputs", "2 gradients"],
    );
    // hooks
    expect_err(
        "hook on a constant",
        || k.register_hook(|_| Ok(None)),
        &["hook", "require"],
    );
    let w = Tensor::randn(&[2], DType::F32)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    w.register_hook(|_| Ok(Some(Tensor::ones(&[3], DType::F32)?)))
        .unwrap();
    let l = w.sum_all().unwrap();
    expect_err(
        "hook returning the wrong shape",
        || l.backward(),
        &["hook", "[3]", "[2]"],
    );
    let h = Tensor::randn(&[2], DType::F32)
        .unwrap()
        .requires_grad_(true)
        .unwrap();
    h.register_hook(|g| {
        Err(deepseek::Error::Msg(format!(
            "hook refused a gradient of shape {:?}",
            g.shape()
        )))
    })
    .unwrap();
    let l = h.exp().unwrap().sum_all().unwrap();
    expect_err(
        "hook returning Err",
        || l.backward(),
        &["hook refused", "[2]"],
    );
    // set_grad with a wrong shape
    expect_err(
        "set_grad",
        || x.set_grad(Some(f32s(&[3]))),
        &["set_grad", "[3]", "[2, 3]"],
    );
    // copy_ into a leaf requiring grad
    expect_err(
        "copy_ into a grad leaf",
        || x.copy_(&f32s(&[2, 3])),
        &["leaf", "in-place"],
    );
}

// ------------------------------------------------------------------------------------------
// nn.functional.

#[test]
fn conv_and_pool_errors() {
    let x = f32s(&[1, 3, 5, 5]);
    let w = f32s(&[4, 2, 3, 3]);
    expect_err(
        "conv2d channel mismatch",
        || F::conv2d(&x, &w, None, [1, 1], [0, 0], [1, 1], 1),
        &["conv2d", "[4, 2, 3, 3]", "[1, 3, 5, 5]"],
    );
    expect_err(
        "conv2d groups",
        || F::conv2d(&x, &f32s(&[4, 1, 3, 3]), None, [1, 1], [0, 0], [1, 1], 2),
        &["conv2d", "groups"],
    );
    expect_err(
        "conv2d 3-d input",
        || F::conv2d(&f32s(&[3, 5, 5]), &w, None, [1, 1], [0, 0], [1, 1], 1),
        &["conv2d", "[3, 5, 5]"],
    );
    expect_err(
        "conv2d kernel too large",
        || F::conv2d(&f32s(&[1, 2, 2, 2]), &w, None, [1, 1], [0, 0], [1, 1], 1),
        &["conv2d", "kernel"],
    );
    expect_err(
        "conv2d stride 0",
        || F::conv2d(&f32s(&[1, 2, 5, 5]), &w, None, [0, 1], [0, 0], [1, 1], 1),
        &["conv2d", "stride"],
    );
    expect_err(
        "conv2d bias",
        || {
            F::conv2d(
                &f32s(&[1, 2, 5, 5]),
                &w,
                Some(&f32s(&[3])),
                [1, 1],
                [0, 0],
                [1, 1],
                1,
            )
        },
        &["conv2d", "bias", "[3]"],
    );
    expect_err(
        "conv1d rank",
        || F::conv1d(&f32s(&[1, 2, 3, 3]), &f32s(&[1, 2, 1]), None, 1, 0, 1, 1),
        &["conv1d", "[1, 2, 3, 3]"],
    );
    expect_err(
        "conv1d channels",
        || F::conv1d(&f32s(&[1, 3, 5]), &f32s(&[2, 2, 1]), None, 1, 0, 1, 1),
        &["[2, 2, 1, 1]", "3"],
    );
    expect_err(
        "max_pool2d 2-d input",
        || F::max_pool2d(&f32s(&[4, 4]), [2, 2], [2, 2], [0, 0], [1, 1], false),
        &["max_pool2d", "[4, 4]"],
    );
    expect_err(
        "max_pool2d kernel too large",
        || F::max_pool2d(&f32s(&[1, 1, 2, 2]), [3, 3], [1, 1], [0, 0], [1, 1], false),
        &["max_pool2d", "kernel"],
    );
    expect_err(
        "max_pool2d padding",
        || F::max_pool2d(&f32s(&[1, 1, 4, 4]), [2, 2], [1, 1], [2, 2], [1, 1], false),
        &["max_pool2d", "pad"],
    );
    expect_err(
        "avg_pool2d stride 0",
        || {
            F::avg_pool2d(
                &f32s(&[1, 1, 4, 4]),
                [2, 2],
                [0, 1],
                [0, 0],
                false,
                true,
                None,
            )
        },
        &["avg_pool2d", "stride"],
    );
    expect_err(
        "avg_pool2d divisor 0",
        || {
            F::avg_pool2d(
                &f32s(&[1, 1, 4, 4]),
                [2, 2],
                [2, 2],
                [0, 0],
                false,
                true,
                Some(0),
            )
        },
        &["avg_pool2d", "divisor"],
    );
    expect_err(
        "adaptive_avg_pool2d rank",
        || F::adaptive_avg_pool2d(&f32s(&[4]), [1, 1]),
        &["adaptive_avg_pool2d", "[4]"],
    );
}

#[test]
fn loss_errors() {
    let x = f32s(&[3, 4]);
    expect_err(
        "cross_entropy target shape",
        || F::cross_entropy(&x, &i64s(&[0, 1], &[2]), None, -100, "mean", 0.0),
        &["[2]", "[3, 4]"],
    );
    expect_err(
        "cross_entropy class out of range",
        || F::cross_entropy(&x, &i64s(&[0, 4, 1], &[3]), None, -100, "mean", 0.0),
        &["4", "4 classes"],
    );
    expect_err(
        "cross_entropy negative class",
        || F::cross_entropy(&x, &i64s(&[0, -1, 1], &[3]), None, -100, "mean", 0.0),
        &["-1"],
    );
    expect_err(
        "cross_entropy N-d target shape",
        || {
            F::cross_entropy(
                &f32s(&[2, 4, 3]),
                &i64s(&[0; 6], &[3, 2]),
                None,
                -100,
                "mean",
                0.0,
            )
        },
        &["[3, 2]", "[2, 4, 3]"],
    );
    expect_err(
        "cross_entropy prob target shape",
        || F::cross_entropy(&x, &f32s(&[3, 5]), None, -100, "mean", 0.0),
        &["cross_entropy", "[3, 5]", "[3, 4]"],
    );
    expect_err(
        "cross_entropy label_smoothing",
        || F::cross_entropy(&x, &i64s(&[0, 1, 2], &[3]), None, -100, "mean", 1.5),
        &["cross_entropy", "label_smoothing"],
    );
    expect_err(
        "cross_entropy reduction",
        || F::cross_entropy(&x, &i64s(&[0, 1, 2], &[3]), None, -100, "avg", 0.0),
        &["cross_entropy", "avg"],
    );
    expect_err(
        "cross_entropy weight shape",
        || {
            F::cross_entropy(
                &x,
                &i64s(&[0, 1, 2], &[3]),
                Some(&f32s(&[3])),
                -100,
                "mean",
                0.0,
            )
        },
        &["[3]", "4 classes"],
    );
    expect_err(
        "nll_loss class out of range",
        || F::nll_loss(&x, &i64s(&[9, 1, 2], &[3]), None, -100, "sum"),
        &["nll_loss", "9"],
    );
    expect_err(
        "mse_loss shape",
        || F::mse_loss(&x, &f32s(&[4, 3]), "mean"),
        &["mse_loss", "[3, 4]", "[4, 3]"],
    );
    expect_err(
        "l1_loss shape",
        || F::l1_loss(&x, &f32s(&[4]), "mean"),
        &["l1_loss", "[3, 4]", "[4]"],
    );
    expect_err(
        "smooth_l1_loss beta",
        || F::smooth_l1_loss(&x, &x, "mean", -1.0),
        &["smooth_l1_loss", "beta"],
    );
    expect_err(
        "bce_with_logits shape",
        || F::binary_cross_entropy_with_logits(&x, &f32s(&[3]), None, None, "mean"),
        &["binary_cross_entropy_with_logits", "[3]"],
    );
    expect_err(
        "bce shape",
        || F::binary_cross_entropy(&x, &f32s(&[3]), None, "mean"),
        &["binary_cross_entropy", "[3]"],
    );
    expect_err(
        "mse reduction",
        || F::mse_loss(&x, &x, "max"),
        &["mse_loss", "max"],
    );
    expect_err(
        "kl_div reduction",
        || F::kl_div(&x, &x, "max", false),
        &["kl_div", "max"],
    );
}

#[test]
fn norm_errors() {
    let x = f32s(&[2, 3, 4]);
    expect_err(
        "layer_norm normalized_shape",
        || F::layer_norm(&x, &[3], None, None, 1e-5),
        &["layer_norm", "[3]", "[2, 3, 4]"],
    );
    expect_err(
        "layer_norm too many dims",
        || F::layer_norm(&x, &[1, 2, 3, 4], None, None, 1e-5),
        &["layer_norm", "[1, 2, 3, 4]"],
    );
    expect_err(
        "layer_norm weight shape",
        || F::layer_norm(&x, &[4], Some(&f32s(&[3])), None, 1e-5),
        &["layer_norm", "weight", "[3]", "[4]"],
    );
    expect_err(
        "rms_norm normalized_shape",
        || F::rms_norm(&x, &[5], None, None),
        &["rms_norm", "[5]", "[2, 3, 4]"],
    );
    expect_err(
        "batch_norm one value per channel",
        || F::batch_norm(&f32s(&[1, 3]), None, None, None, None, true, 0.1, 1e-5),
        &["batch_norm", "[1, 3]"],
    );
    expect_err(
        "batch_norm eval without stats",
        || F::batch_norm(&x, None, None, None, None, false, 0.1, 1e-5),
        &["batch_norm", "running_mean"],
    );
    expect_err(
        "batch_norm 1-d",
        || F::batch_norm(&f32s(&[3]), None, None, None, None, true, 0.1, 1e-5),
        &["batch_norm", "[3]"],
    );
    expect_err(
        "group_norm groups",
        || F::group_norm(&x, 2, None, None, 1e-5),
        &["group_norm", "num_groups=2", "[2, 3, 4]"],
    );
}

#[test]
fn rnn_and_attention_errors() {
    let x = f32s(&[3, 2, 4]);
    let h0 = f32s(&[1, 2, 5]);
    let c0 = f32s(&[1, 2, 5]);
    let ws = vec![f32s(&[20, 3]), f32s(&[20, 5])];
    expect_err(
        "lstm weight shape",
        || F::lstm(&x, &h0, &c0, &ws, 1, false),
        &["lstm", "[20, 3]", "4"],
    );
    let ws = vec![f32s(&[20, 4]), f32s(&[20, 5])];
    expect_err(
        "lstm h0 shape",
        || F::lstm(&x, &f32s(&[1, 3, 5]), &c0, &ws, 1, false),
        &["lstm", "h0", "[3, 5]"],
    );
    expect_err(
        "lstm weight count",
        || F::lstm(&x, &h0, &c0, &ws[..1], 1, false),
        &["lstm", "weights"],
    );
    expect_err(
        "lstm 2-d input",
        || F::lstm(&f32s(&[3, 4]), &h0, &c0, &ws, 1, false),
        &["lstm", "[3, 4]"],
    );
    let gw = vec![f32s(&[15, 3]), f32s(&[15, 5])];
    expect_err(
        "gru weight shape",
        || F::gru(&x, &h0, &gw, 1, false),
        &["gru", "[15, 3]"],
    );
    let (q, k) = (f32s(&[2, 3, 4]), f32s(&[2, 5, 3]));
    expect_err(
        "sdpa last dims",
        || F::scaled_dot_product_attention(&q, &k, &f32s(&[2, 5, 4]), None, 0.0, false, None),
        &["scaled_dot_product_attention", "[2, 3, 4]", "[2, 5, 3]"],
    );
    let k = f32s(&[2, 5, 4]);
    let m = Tensor::ones(&[3, 5], DType::Bool).unwrap();
    expect_err(
        "sdpa mask and causal",
        || F::scaled_dot_product_attention(&q, &k, &k, Some(&m), 0.0, true, None),
        &["scaled_dot_product_attention", "is_causal"],
    );
    let m = Tensor::ones(&[4, 5], DType::Bool).unwrap();
    expect_err(
        "sdpa mask shape",
        || F::scaled_dot_product_attention(&q, &k, &k, Some(&m), 0.0, false, None),
        &["[4, 5]"],
    );
    let qm = f32s(&[3, 2, 6]);
    expect_err(
        "mha heads",
        || {
            F::multi_head_attention_forward(
                &qm,
                &qm,
                &qm,
                6,
                4,
                &f32s(&[18, 6]),
                None,
                &f32s(&[6, 6]),
                None,
            )
        },
        &["multi_head_attention", "6", "4"],
    );
    expect_err(
        "mha in_proj shape",
        || {
            F::multi_head_attention_forward(
                &qm,
                &qm,
                &qm,
                6,
                2,
                &f32s(&[12, 6]),
                None,
                &f32s(&[6, 6]),
                None,
            )
        },
        &["multi_head_attention", "[12, 6]", "[18, 6]"],
    );
    expect_err(
        "mha query shape",
        || {
            F::multi_head_attention_forward(
                &f32s(&[3, 6]),
                &qm,
                &qm,
                6,
                2,
                &f32s(&[18, 6]),
                None,
                &f32s(&[6, 6]),
                None,
            )
        },
        &["multi_head_attention", "[3, 6]"],
    );
}

#[test]
fn misc_value_errors() {
    let x = f32s(&[2, 3]);
    expect_err("gelu approximate", || x.gelu("fast"), &["gelu", "fast"]);
    expect_err("clamp without bounds", || x.clamp(None, None), &["clamp"]);
    expect_err("tril 1-d", || f32s(&[3]).tril(0), &["tril", "[3]"]);
    expect_err(
        "triu 0-d",
        || Tensor::scalar(1.0f32).triu(0),
        &["triu", "[]"],
    );
    expect_err(
        "take_along_dim rank",
        || x.take_along_dim(&i64s(&[0], &[1]), 1),
        &["take_along_dim", "[2, 3]", "[1]"],
    );
    expect_err(
        "scatter_add rank",
        || x.scatter_add(1, &i64s(&[0], &[1]), &f32s(&[1])),
        &["scatter_add", "[2, 3]", "[1]"],
    );
    expect_err(
        "dropout p",
        || F::dropout(&x, 1.5, true),
        &["dropout", "1.5"],
    );
}

// ------------------------------------------------------------------------------------------
// Errors that are raised, but by an inner op: the message names that op instead of the one
// the user called.

#[test]
fn cross_entropy_target_shape_names_cross_entropy() {
    // cross_entropy calls nll_loss internally; the error must still name cross_entropy.
    let x = f32s(&[3, 4]);
    expect_err(
        "cross_entropy target shape",
        || F::cross_entropy(&x, &i64s(&[0, 1], &[2]), None, -100, "mean", 0.0),
        &["cross_entropy", "[2]", "[3, 4]"],
    );
    expect_err(
        "cross_entropy class out of range",
        || F::cross_entropy(&x, &i64s(&[0, 4, 1], &[3]), None, -100, "mean", 0.0),
        &["cross_entropy", "4"],
    );
}

#[test]
fn lstm_state_for_missing_layer_names_lstm() {
    // h0/c0 with 1 layer for a 2-layer LSTM.
    let x = f32s(&[3, 2, 4]);
    let h0 = f32s(&[1, 2, 5]);
    let c0 = f32s(&[1, 2, 5]);
    let ws = vec![
        f32s(&[20, 4]),
        f32s(&[20, 5]),
        f32s(&[20, 5]),
        f32s(&[20, 5]),
    ];
    expect_err(
        "lstm 2 layers with 1-layer h0",
        || F::lstm(&x, &h0, &c0, &ws, 2, false),
        &["lstm", "[1, 2, 5]"],
    );
    let gw = vec![
        f32s(&[15, 4]),
        f32s(&[15, 5]),
        f32s(&[15, 5]),
        f32s(&[15, 5]),
    ];
    expect_err(
        "gru 2 layers with 1-layer h0",
        || F::gru(&x, &h0, &gw, 2, false),
        &["gru", "[1, 2, 5]"],
    );
}

#[test]
fn batch_norm_weight_shape_names_batch_norm() {
    // A weight for the wrong number of channels.
    let x = f32s(&[2, 3, 4]);
    expect_err(
        "batch_norm weight",
        || F::batch_norm(&x, None, None, Some(&f32s(&[4])), None, true, 0.1, 1e-5),
        &["batch_norm", "[4]"],
    );
}

#[test]
fn group_norm_weight_shape_names_group_norm() {
    let x = f32s(&[2, 3, 4]);
    expect_err(
        "group_norm weight",
        || F::group_norm(&x, 3, Some(&f32s(&[4])), None, 1e-5),
        &["group_norm", "[4]"],
    );
}

#[test]
fn sdpa_key_value_length_names_sdpa() {
    // Key and value of different lengths.
    let (q, k, v) = (f32s(&[2, 3, 4]), f32s(&[2, 5, 4]), f32s(&[2, 6, 4]));
    expect_err(
        "sdpa key/value length",
        || F::scaled_dot_product_attention(&q, &k, &v, None, 0.0, false, None),
        &["scaled_dot_product_attention", "[2, 5, 4]", "[2, 6, 4]"],
    );
}

// ------------------------------------------------------------------------------------------
// Inputs that used to panic or hang: each must now return (Ok or Err) without panicking.

/// Runs every case; each must return (Ok or Err) without panicking. Fails listing the panics.
fn no_panics(cases: Vec<(&str, Box<dyn FnOnce() -> Result<()>>)>) {
    let mut panics = Vec::new();
    for (name, f) in cases {
        if let Err(p) = catch_unwind(AssertUnwindSafe(f)) {
            let m = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            panics.push(format!("{name}: {m}"));
        }
    }
    assert!(
        panics.is_empty(),
        "{} cases panicked:\n  {}",
        panics.len(),
        panics.join("\n  ")
    );
}

macro_rules! case {
    ($name:expr, $e:expr) => {
        (
            $name,
            Box::new(move || $e.map(|_| ())) as Box<dyn FnOnce() -> Result<()>>,
        )
    };
}

// BUG: dim-taking ops on 0-d tensors panic with "index out of bounds: the len is 0 but the
// index is 0". `norm_dim` accepts dim 0 / -1 for rank 0 (as PyTorch does), but the callers then
// index `shape()[d]`. PyTorch returns the scalar (sum/mean/amax/cumsum/...) or raises
// ("select() cannot be applied to a 0-dim tensor", "zero-dimensional tensor cannot be
// concatenated").
#[test]
fn zero_dim_tensors_with_a_dim_do_not_panic() {
    let s = || Tensor::scalar(1.0f32);
    let i0 = || Tensor::scalar(0i64);
    no_panics(vec![
        case!("size(0)", s().size(0)),
        case!("select", s().select(0, 0)),
        case!("narrow", s().narrow(0, 0, 1)),
        case!("slice", s().slice(0, 0, 1, 1)),
        case!("flip", s().flip(0)),
        case!("transpose(0, 0)", s().transpose(0, 0)),
        case!("transpose(-1, 0)", s().transpose(-1, 0)),
        case!("split", s().split(1, 0)),
        case!("chunk", s().chunk(1, 0)),
        case!("unbind", s().unbind(0)),
        case!("cumsum", s().cumsum(0)),
        case!("sum_dim", s().sum_dim(&[0], false)),
        case!("mean_dim", s().mean_dim(&[-1], true)),
        case!("amax", s().amax(&[0], false)),
        case!("prod_dim", s().prod_dim(0, false)),
        case!("argmax", s().argmax(Some(0), false)),
        case!("max_dim", s().max_dim(0, false)),
        case!("logsumexp", s().logsumexp(&[0], false)),
        case!("var_dim", s().var_dim(Some(&[0]), 0.0, false)),
        case!("gather", s().gather(0, &i0())),
        case!("index_select", s().index_select(0, &i0())),
        case!("scatter_add", s().scatter_add(0, &i0(), &s())),
        case!("index_add", s().index_add(0, &i0(), &s())),
        case!("take_along_dim", s().take_along_dim(&i0(), 0)),
        case!("cat", Tensor::cat(&[s(), s()], 0)),
        case!(
            "cross_entropy 0-d input",
            F::cross_entropy(&s(), &i0(), None, -100, "mean", 0.0)
        ),
        case!(
            "nll_loss 0-d input",
            F::nll_loss(&s(), &i0(), None, -100, "mean")
        ),
    ]);
}

#[test]
fn empty_index_tensors_give_empty_results() {
    let x = || f32s(&[3, 4]);
    let e = || Tensor::zeros(&[0, 4], DType::I64).unwrap();
    let e2 = || Tensor::zeros(&[3, 0], DType::I64).unwrap();
    no_panics(vec![
        case!("gather [0, 4]", x().gather(0, &e())),
        case!("gather [3, 0]", x().gather(1, &e2())),
        case!("take_along_dim [3, 0]", x().take_along_dim(&e2(), 1)),
        case!(
            "scatter_add [0, 4]",
            x().scatter_add(0, &e(), &f32s(&[0, 4]))
        ),
        case!(
            "scatter_add [3, 0]",
            x().scatter_add(1, &e2(), &f32s(&[3, 0]))
        ),
    ]);
    let x = x();
    assert_eq!(x.gather(1, &e2()).unwrap().shape(), &[3, 0]);
    assert_eq!(x.gather(0, &e()).unwrap().shape(), &[0, 4]);
    let s = x.scatter_add(0, &e(), &f32s(&[0, 4])).unwrap();
    assert_eq!(s.to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
}

// BUG: einsum with an output subscript that appears in no operand panics
// (`called Option::unwrap() on a None value`).
#[test]
fn einsum_unknown_output_subscript() {
    expect_err(
        "einsum ij->k",
        || Tensor::einsum("ij->k", &[f32s(&[2, 3])]),
        &["einsum", "k"],
    );
}

// BUG: layer_norm over an empty trailing dim panics inside the kernel ("chunk size must be
// non-zero").
#[test]
fn layer_norm_empty_normalized_shape() {
    no_panics(vec![case!(
        "layer_norm [2, 0] over [0]",
        F::layer_norm(&f32s(&[2, 0]), &[0], None, None, 1e-5)
    )]);
}

// BUG: sizes that overflow: pad with a huge amount panics ("range start index ... out of
// range"), arange to infinity panics ("capacity overflow").
#[test]
fn overflowing_sizes() {
    no_panics(vec![
        case!("pad usize::MAX", f32s(&[3]).pad(&[usize::MAX, 1], 0.0)),
        case!(
            "arange(0, inf)",
            Tensor::arange(0.0, f64::INFINITY, 1.0, DType::F32)
        ),
    ]);
    expect_err(
        "arange(0, inf)",
        || Tensor::arange(0.0, f64::INFINITY, 1.0, DType::F32),
        &["arange"],
    );
}

// BUG: max_pool2d with dilation 0 never returns (infinite loop in the pooling kernel: the
// window loop steps by the dilation). `pool()` validates kernel and stride but not dilation.
#[test]
fn max_pool2d_dilation_zero() {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let r =
            F::max_pool2d(&f32s(&[1, 1, 4, 4]), [2, 2], [1, 1], [0, 0], [0, 1], false).map(|_| ());
        let _ = tx.send(r.map_err(|e| e.to_string()));
    });
    match rx.recv_timeout(std::time::Duration::from_secs(5)) {
        Err(_) => panic!("max_pool2d with dilation [0, 1] did not return within 5 s"),
        Ok(r) => {
            let m = r.expect_err("dilation 0 must be an error");
            assert!(m.contains("max_pool2d") && m.contains("dilation"), "{m}");
        }
    }
}

// ------------------------------------------------------------------------------------------
// Inputs that are accepted (Ok) but should be refused.

// BUG: a zero-size kernel underflows `dilation * (k - 1) + 1` (usize) and conv2d returns Ok
// with a bogus shape ([1, 1, 4, 2] here) in release builds; debug builds panic on overflow.
#[test]
fn conv2d_zero_size_kernel() {
    expect_err(
        "conv2d kernel [0, 2]",
        || {
            F::conv2d(
                &f32s(&[1, 1, 3, 3]),
                &f32s(&[1, 1, 0, 2]),
                None,
                [1, 1],
                [0, 0],
                [1, 1],
                1,
            )
        },
        &["conv2d", "[1, 1, 0, 2]"],
    );
}

// BUG: a gradient of another dtype is accepted: set_grad with an int64 tensor on a float32 leaf,
// and a hook returning an int64 gradient (x.grad() then has dtype int64).
#[test]
fn set_grad_dtype_mismatch() {
    let x = f32s(&[2]).requires_grad_(true).unwrap();
    expect_err(
        "set_grad int64 on float32",
        || x.set_grad(Some(i64s(&[1, 2], &[2]))),
        &["set_grad", "int64", "float32"],
    );
}

#[test]
fn hook_gradient_dtype_mismatch() {
    let y = f32s(&[2]).requires_grad_(true).unwrap();
    y.register_hook(|_| Ok(Some(i64s(&[1, 2], &[2])))).unwrap();
    expect_err(
        "hook returning int64",
        || y.sum_all().unwrap().backward(),
        &["hook", "int64"],
    );
}
