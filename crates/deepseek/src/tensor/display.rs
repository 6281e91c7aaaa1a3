//! `Display` like PyTorch's printout: `tensor([[1., 2.], [3., 4.]])`.

use super::{DType, Tensor};
use std::fmt;

fn fmt_float(v: f64, int_like: bool, sci: bool, prec: usize) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 {
            "inf".into()
        } else {
            "-inf".into()
        }
    } else if sci {
        format!("{:.*e}", prec, v)
    } else if int_like {
        format!("{v:.0}.")
    } else {
        format!("{:.*}", prec, v)
    }
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Ok(vals) = self.to_vec_f64() else {
            return write!(f, "tensor(<unreadable>)");
        };
        let dt = self.dtype();
        let finite: Vec<f64> = vals.iter().copied().filter(|v| v.is_finite()).collect();
        let int_like = finite.iter().all(|v| v.fract() == 0.0);
        let amax = finite.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let amin = finite
            .iter()
            .filter(|v| **v != 0.0)
            .fold(f64::INFINITY, |a, v| a.min(v.abs()));
        let sci = dt.is_float()
            && (amax >= 1e8
                || (amin < 1e-4 && amin.is_finite())
                || (amax / amin > 1000.0 && !int_like));
        let strs: Vec<String> = vals
            .iter()
            .map(|&v| match dt {
                DType::Bool => {
                    if v != 0.0 {
                        "True".into()
                    } else {
                        "False".into()
                    }
                }
                d if !d.is_float() => format!("{}", v as i64),
                _ => fmt_float(v, int_like, sci, 4),
            })
            .collect();
        let width = strs.iter().map(|s| s.len()).max().unwrap_or(0);
        let shape = self.shape().to_vec();
        fn rec(
            out: &mut String,
            strs: &[String],
            shape: &[usize],
            off: usize,
            depth: usize,
            width: usize,
        ) {
            if shape.is_empty() {
                out.push_str(&strs[off]);
                return;
            }
            out.push('[');
            let inner: usize = shape[1..].iter().product();
            let n = shape[0];
            let show: Vec<usize> = if n > 6 {
                (0..3).chain(n - 3..n).collect()
            } else {
                (0..n).collect()
            };
            for (k, &i) in show.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                    if shape.len() > 1 {
                        out.push_str(&"\n".repeat(shape.len() - 1));
                        out.push_str(&" ".repeat(depth + 8));
                    } else {
                        out.push(' ');
                    }
                }
                if n > 6 && k == 3 {
                    out.push_str("...,");
                    if shape.len() > 1 {
                        out.push('\n');
                        out.push_str(&" ".repeat(depth + 8));
                    } else {
                        out.push(' ');
                    }
                }
                if shape.len() == 1 {
                    out.push_str(&format!("{:>w$}", strs[off + i], w = width));
                } else {
                    rec(out, strs, &shape[1..], off + i * inner, depth + 1, width);
                }
            }
            out.push(']');
        }
        let mut s = String::new();
        if vals.is_empty() {
            s.push_str("[]");
        } else {
            rec(&mut s, &strs, &shape, 0, 0, width);
        }
        write!(f, "tensor({s}")?;
        if vals.is_empty() && shape.len() > 1 {
            write!(f, ", size={shape:?}")?;
        }
        if !matches!(dt, DType::F32 | DType::I64 | DType::Bool) {
            write!(f, ", dtype=torch.{}", dt.name())?;
        }
        if let Some(name) = self.grad_fn_name() {
            write!(f, ", grad_fn=<{name}Backward>")?;
        } else if self.requires_grad() {
            write!(f, ", requires_grad=True")?;
        }
        write!(f, ")")
    }
}
