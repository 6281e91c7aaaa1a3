//! Matrix products: `matmul` in all its broadcasting forms, `linear`, `einsum`.

use super::Op;
use crate::autograd::{needs_record, record1, Ctx};
use crate::error::bail_shape;
use crate::tensor::broadcast_shapes;
use crate::{DType, Error, Result, Tensor};

/// The primitive: equal rank >= 2, equal batch dims.
fn bmm(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let out = crate::backend::matmul(a, b)?;
    if !needs_record(&[a, b]) {
        return Ok(out);
    }
    Ok(record1(
        Op::Matmul,
        &[a, b],
        out,
        vec![a.clone(), b.clone()],
        false,
    ))
}

pub(crate) fn backward(ctx: &Ctx, grads: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> {
    let Some(g) = &grads[0] else {
        return Ok(vec![None, None]);
    };
    let (a, b) = (ctx.saved(0), ctx.saved(1));
    // A gradient for an operand that is a transposed view (a Linear's `W^T`) is computed
    // transposed, `(g^T a)^T`, so that it lands in the layout of the tensor behind the view
    // and needs no strided copy when it reaches that tensor's `.grad`.
    let ga = if ctx.needs(0) {
        Some(if is_transposed(a) {
            bmm(b, &g.transpose(-1, -2)?)?.transpose(-1, -2)?
        } else {
            bmm(g, &b.transpose(-1, -2)?)?
        })
    } else {
        None
    };
    let gb = if ctx.needs(1) {
        Some(if is_transposed(b) {
            bmm(&g.transpose(-1, -2)?, a)?.transpose(-1, -2)?
        } else {
            bmm(&a.transpose(-1, -2)?, g)?
        })
    } else {
        None
    };
    Ok(vec![ga, gb])
}

/// True when the last two dims of `t` are a transposed view of row-major matrices.
fn is_transposed(t: &Tensor) -> bool {
    let r = t.rank();
    if r < 2 || t.is_contiguous() {
        return false;
    }
    let (s, st) = (t.shape(), t.stride());
    s[r - 2] > 1 && s[r - 1] > 1 && st[r - 2] == 1 && st[r - 1] == s[r - 2]
}

impl Tensor {
    /// Matrix product with PyTorch's `matmul` semantics (dot, matrix-vector, batched and
    /// broadcast batched).
    pub fn matmul(&self, other: &Tensor) -> Result<Tensor> {
        let (a, b) = (self, other);
        if a.rank() == 0 || b.rank() == 0 {
            bail_shape!(
                "matmul",
                "both arguments need at least 1 dim, got shapes {:?} and {:?}",
                a.shape(),
                b.shape()
            );
        }
        if !a.dtype().is_float() || !b.dtype().is_float() {
            return Err(Error::dtype(
                "matmul",
                format!(
                    "expected floating-point tensors, got {} and {}",
                    a.dtype(),
                    b.dtype()
                ),
            ));
        }
        let dt = DType::promote(a.dtype(), b.dtype());
        let (a, b) = (&a.to_dtype(dt)?, &b.to_dtype(dt)?);
        let k_a = a.shape()[a.rank() - 1];
        let k_b = if b.rank() == 1 {
            b.shape()[0]
        } else {
            b.shape()[b.rank() - 2]
        };
        if k_a != k_b {
            bail_shape!(
                "matmul",
                "shapes {:?} and {:?} cannot be multiplied ({} vs {})",
                a.shape(),
                b.shape(),
                k_a,
                k_b
            );
        }
        match (a.rank(), b.rank()) {
            (1, 1) => return bmm(&a.unsqueeze(0)?, &b.unsqueeze(1)?)?.reshape(&[]),
            (2, 1) => return bmm(a, &b.unsqueeze(1)?)?.squeeze_dim(-1),
            (1, _) => return a.unsqueeze(0)?.matmul(b)?.squeeze_dim(-2),
            (_, 1) => return a.matmul(&b.unsqueeze(1)?)?.squeeze_dim(-1),
            (2, 2) => return bmm(a, b),
            _ => {}
        }
        // Fold a's batch into rows when b is a single matrix: one big product instead of a
        // batch of small ones that each re-pack b (and, in backward, a batch of weight
        // gradients to sum). A layout that does not allow the view (e.g. a transposed
        // batch-first LSTM output) is copied first, as PyTorch does.
        if b.rank() == 2 {
            let n = a.shape()[a.rank() - 2];
            let batch: usize = a.shape()[..a.rank() - 2].iter().product();
            let a2 = match a.layout().view(&[batch * n, k_a]) {
                Some(_) => a.reshape(&[batch * n, k_a])?,
                None => a.contiguous()?.reshape(&[batch * n, k_a])?,
            };
            let mut shape = a.shape()[..a.rank() - 1].to_vec();
            shape.push(b.shape()[1]);
            return bmm(&a2, b)?.reshape(&shape);
        }
        let ba = &a.shape()[..a.rank() - 2];
        let bb = &b.shape()[..b.rank() - 2];
        let batch = broadcast_shapes("matmul", ba, bb)?;
        let mut sa = batch.clone();
        sa.extend_from_slice(&a.shape()[a.rank() - 2..]);
        let mut sb = batch;
        sb.extend_from_slice(&b.shape()[b.rank() - 2..]);
        bmm(&a.expand(&sa)?, &b.expand(&sb)?)
    }
    /// `x @ weight.T + bias` (PyTorch's `F.linear`; weight is [out, in]).
    pub fn linear(&self, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
        if weight.rank() != 2
            || self.rank() == 0
            || self.shape()[self.rank() - 1] != weight.shape()[1]
        {
            bail_shape!(
                "linear",
                "input of shape {:?} does not fit weight of shape {:?} (expected [..., {}])",
                self.shape(),
                weight.shape(),
                weight.shape().get(1).copied().unwrap_or(0)
            );
        }
        let y = self.matmul(&weight.t()?)?;
        let Some(b) = bias else {
            return Ok(y);
        };
        // The product is new and only ours: add the bias in its buffer (no second pass over
        // a fresh allocation). The sum is recorded as the usual broadcast add of (y, b); its
        // backward reads neither value, so y's buffer holding y + b is harmless.
        if crate::backend::bias_add_if_sole(&y, b)? {
            let out = y.detach();
            if !needs_record(&[&y, b]) {
                return Ok(out);
            }
            return Ok(record1(
                Op::Binary(super::BinaryOp::Add),
                &[&y, b],
                out,
                vec![],
                false,
            ));
        }
        y.add(b)
    }
    /// Einstein summation over two operands (or one), e.g. `"bij,bjk->bik"`.
    pub fn einsum(equation: &str, operands: &[Tensor]) -> Result<Tensor> {
        crate::ops::matmul::einsum(equation, operands)
    }
}

/// `einsum` for one or two operands: contractions become one batched matmul.
pub fn einsum(equation: &str, ops: &[Tensor]) -> Result<Tensor> {
    let eq: String = equation.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, rhs) = match eq.split_once("->") {
        Some((l, r)) => (l.to_string(), Some(r.to_string())),
        None => (eq.clone(), None),
    };
    let terms: Vec<&str> = lhs.split(',').collect();
    if terms.len() != ops.len() {
        return Err(Error::value(
            "einsum",
            format!(
                "equation '{equation}' has {} operands but {} tensors were given",
                terms.len(),
                ops.len()
            ),
        ));
    }
    if terms.iter().any(|t| t.contains('.')) {
        return Err(Error::value("einsum", "ellipsis ('...') is not supported"));
    }
    let mut sizes: std::collections::BTreeMap<char, usize> = std::collections::BTreeMap::new();
    for (t, x) in terms.iter().zip(ops) {
        if t.len() != x.rank() {
            bail_shape!(
                "einsum",
                "subscripts '{t}' do not match operand of shape {:?}",
                x.shape()
            );
        }
        for (c, &s) in t.chars().zip(x.shape()) {
            if let Some(&old) = sizes.get(&c) {
                if old != s && old != 1 && s != 1 {
                    bail_shape!("einsum", "subscript '{c}' has size {old} and {s}");
                }
                sizes.insert(c, old.max(s));
            } else {
                sizes.insert(c, s);
            }
        }
    }
    let out: Vec<char> = match rhs {
        Some(r) => r.chars().collect(),
        None => {
            let all: String = terms.concat();
            let mut v: Vec<char> = sizes
                .keys()
                .copied()
                .filter(|c| all.matches(*c).count() == 1)
                .collect();
            v.sort();
            v
        }
    };
    if let Some(c) = out.iter().find(|c| !sizes.contains_key(c)) {
        return Err(Error::value(
            "einsum",
            format!("output subscript '{c}' does not appear in any input of '{equation}'"),
        ));
    }
    // Diagonals within a term are not supported.
    for t in &terms {
        let mut seen = std::collections::HashSet::new();
        if !t.chars().all(|c| seen.insert(c)) {
            return Err(Error::value(
                "einsum",
                format!("repeated subscripts in one operand ('{t}') are not supported"),
            ));
        }
    }
    let permute_to = |x: &Tensor, from: &[char], to: &[char]| -> Result<Tensor> {
        let p: Vec<isize> = to
            .iter()
            .map(|c| from.iter().position(|d| d == c).unwrap() as isize)
            .collect();
        x.permute(&p)
    };
    if ops.len() == 1 {
        let t: Vec<char> = terms[0].chars().collect();
        let sum: Vec<isize> = t
            .iter()
            .enumerate()
            .filter(|(_, c)| !out.contains(c))
            .map(|(i, _)| i as isize)
            .collect();
        let x = if sum.is_empty() {
            ops[0].clone()
        } else {
            ops[0].sum_dim(&sum, false)?
        };
        let rest: Vec<char> = t.iter().copied().filter(|c| out.contains(c)).collect();
        return permute_to(&x, &rest, &out);
    }
    let (ta, tb): (Vec<char>, Vec<char>) = (terms[0].chars().collect(), terms[1].chars().collect());
    // Sum out letters that appear in only one operand and not in the output.
    let reduce_own = |x: &Tensor, t: &[char], other: &[char]| -> Result<(Tensor, Vec<char>)> {
        let dims: Vec<isize> = t
            .iter()
            .enumerate()
            .filter(|(_, c)| !out.contains(c) && !other.contains(c))
            .map(|(i, _)| i as isize)
            .collect();
        let keep: Vec<char> = t
            .iter()
            .copied()
            .filter(|c| out.contains(c) || other.contains(c))
            .collect();
        Ok((
            if dims.is_empty() {
                x.clone()
            } else {
                x.sum_dim(&dims, false)?
            },
            keep,
        ))
    };
    let (a, ta) = reduce_own(&ops[0], &ta, &tb)?;
    let (b, tb) = reduce_own(&ops[1], &tb, &ta)?;
    let batch: Vec<char> = out
        .iter()
        .copied()
        .filter(|c| ta.contains(c) && tb.contains(c))
        .collect();
    let contract: Vec<char> = ta
        .iter()
        .copied()
        .filter(|c| tb.contains(c) && !out.contains(c))
        .collect();
    let only_a: Vec<char> = ta.iter().copied().filter(|c| !tb.contains(c)).collect();
    let only_b: Vec<char> = tb.iter().copied().filter(|c| !ta.contains(c)).collect();
    let prod = |cs: &[char]| cs.iter().map(|c| sizes[c]).product::<usize>();
    let pa: Vec<char> = batch
        .iter()
        .chain(&only_a)
        .chain(&contract)
        .copied()
        .collect();
    let pb: Vec<char> = batch
        .iter()
        .chain(&contract)
        .chain(&only_b)
        .copied()
        .collect();
    let a = permute_to(&a, &ta, &pa)?;
    let b = permute_to(&b, &tb, &pb)?;
    let full = |x: &Tensor, cs: &[char]| -> Result<Tensor> {
        let s: Vec<usize> = cs.iter().map(|c| sizes[c]).collect();
        x.expand(&s)
    };
    let a = full(&a, &pa)?.reshape(&[prod(&batch), prod(&only_a), prod(&contract)])?;
    let b = full(&b, &pb)?.reshape(&[prod(&batch), prod(&contract), prod(&only_b)])?;
    let r = a.matmul(&b)?;
    let rc: Vec<char> = batch
        .iter()
        .chain(&only_a)
        .chain(&only_b)
        .copied()
        .collect();
    let rs: Vec<usize> = rc.iter().map(|c| sizes[c]).collect();
    permute_to(&r.reshape(&rs)?, &rc, &out)
}
