//! `Display` exactly like PyTorch's `repr` (a port of `torch/_tensor_str.py`): the same
//! number formatting (fixed, integer-valued `1.`, or scientific `1.0000e+10`, chosen from
//! the tensor's values), summarisation of tensors above `threshold` elements to `edgeitems`
//! per edge, line wrapping at `linewidth`, and the `dtype=` / `grad_fn=` / `requires_grad=`
//! suffixes. [`set_printoptions`] changes the options process-wide, like
//! `torch.set_printoptions`.
//!
//! ```
//! use deepseek::{DType, Tensor};
//! let t = Tensor::arange(0.0, 7.0, 1.0, DType::I64)?;
//! assert_eq!(t.to_string(), "tensor([0, 1, 2, 3, 4, 5, 6])");
//! let x = Tensor::from_vec(vec![1e10f32, 1.0], &[2])?;
//! assert_eq!(x.to_string(), "tensor([1.0000e+10, 1.0000e+00])");
//! # Ok::<(), deepseek::Error>(())
//! ```

use super::{DType, Tensor};
use std::fmt;
use std::sync::RwLock;

/// How tensors are printed (PyTorch's `torch.set_printoptions` fields and defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrintOptions {
    /// Digits after the decimal point (default 4).
    pub precision: usize,
    /// Tensors with more elements than this are summarised (default 1000; `usize::MAX`
    /// never summarises, PyTorch's `threshold=inf`).
    pub threshold: usize,
    /// Items shown at each edge of a summarised dimension (default 3).
    pub edgeitems: usize,
    /// Characters per line before wrapping (default 80).
    pub linewidth: usize,
    /// `Some(true)`/`Some(false)` forces scientific/fixed notation; `None` (default) picks
    /// it from the values as PyTorch does.
    pub sci_mode: Option<bool>,
}

impl Default for PrintOptions {
    fn default() -> Self {
        PrintOptions {
            precision: 4,
            threshold: 1000,
            edgeitems: 3,
            linewidth: 80,
            sci_mode: None,
        }
    }
}

static OPTIONS: RwLock<Option<PrintOptions>> = RwLock::new(None);

/// The current print options.
pub fn get_printoptions() -> PrintOptions {
    OPTIONS
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .unwrap_or_default()
}

/// Sets the print options for every later `Display` of a tensor (process-wide).
pub fn set_printoptions(o: PrintOptions) {
    *OPTIONS.write().unwrap_or_else(|e| e.into_inner()) = Some(o);
}

/// Python's `format(v, ".{p}e")`: at least two exponent digits with a sign.
fn fmt_sci(v: f64, p: usize) -> String {
    if !v.is_finite() {
        return fmt_nonfinite(v);
    }
    let s = format!("{v:.p$e}");
    let (m, e) = s.split_once('e').unwrap_or((&s, "0"));
    let (sign, digits) = match e.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', e),
    };
    format!("{m}e{sign}{digits:0>2}")
}

fn fmt_nonfinite(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v > 0.0 {
        "inf".into()
    } else {
        "-inf".into()
    }
}

/// Python's `format(v, ".{p}f")`.
fn fmt_fixed(v: f64, p: usize) -> String {
    if !v.is_finite() {
        return fmt_nonfinite(v);
    }
    format!("{v:.p$}")
}

/// PyTorch's `_Formatter`: one formatting mode and width for all elements printed.
struct Formatter {
    floating: bool,
    bool_dtype: bool,
    int_mode: bool,
    sci_mode: bool,
    max_width: usize,
    precision: usize,
}

impl Formatter {
    fn new(vals: &[f64], dt: DType, o: &PrintOptions) -> Formatter {
        let mut f = Formatter {
            floating: dt.is_float(),
            bool_dtype: dt == DType::Bool,
            int_mode: true,
            sci_mode: false,
            max_width: 1,
            precision: o.precision,
        };
        if !f.floating {
            for &v in vals {
                f.max_width = f.max_width.max(f.plain(v).len());
            }
        } else {
            let nz: Vec<f64> = vals
                .iter()
                .copied()
                .filter(|v| v.is_finite() && *v != 0.0)
                .collect();
            if !nz.is_empty() {
                let amin = nz.iter().fold(f64::INFINITY, |a, v| a.min(v.abs()));
                let amax = nz.iter().fold(0.0f64, |a, v| a.max(v.abs()));
                f.int_mode = nz.iter().all(|v| *v == v.ceil());
                let p = o.precision;
                // The notation first (forced by the options, or from the values), then the
                // width of the values in it.
                f.sci_mode = o
                    .sci_mode
                    .unwrap_or(amax / amin > 1000.0 || amax > 1.0e8 || amin < 1.0e-4);
                for &v in &nz {
                    let w = if f.sci_mode {
                        fmt_sci(v, p).len()
                    } else if f.int_mode {
                        format!("{v:.0}").len() + 1
                    } else {
                        fmt_fixed(v, p).len()
                    };
                    f.max_width = f.max_width.max(w);
                }
            }
        }
        f
    }

    /// An integer or bool element as Python's `str` writes it.
    fn plain(&self, v: f64) -> String {
        if self.bool_dtype {
            if v != 0.0 { "True" } else { "False" }.into()
        } else {
            format!("{}", v as i64)
        }
    }

    fn format(&self, v: f64) -> String {
        let s = if self.floating {
            if self.sci_mode {
                fmt_sci(v, self.precision)
            } else if self.int_mode {
                let mut s = if v.is_finite() {
                    format!("{v:.0}")
                } else {
                    fmt_nonfinite(v)
                };
                if v.is_finite() {
                    s.push('.');
                }
                s
            } else {
                fmt_fixed(v, self.precision)
            }
        } else {
            self.plain(v)
        };
        format!("{s:>w$}", w = self.max_width)
    }
}

/// The row-major indices of the elements shown (PyTorch's `get_summarized_data`).
fn summarized(shape: &[usize], off: usize, edge: usize, out: &mut Vec<usize>) {
    let Some((&n, rest)) = shape.split_first() else {
        out.push(off);
        return;
    };
    let inner: usize = rest.iter().product();
    let rows: Vec<usize> = if n > 2 * edge {
        (0..edge).chain(n - edge..n).collect()
    } else {
        (0..n).collect()
    };
    for i in rows {
        summarized(rest, off + i * inner, edge, out);
    }
}

struct Printer<'a> {
    vals: &'a [f64],
    f: Formatter,
    o: PrintOptions,
    summarize: bool,
}

impl Printer<'_> {
    fn vector(&self, n: usize, off: usize, indent: usize) -> String {
        let o = &self.o;
        let element_length = self.f.max_width + 2;
        let per_line = (o.linewidth.saturating_sub(indent) / element_length).max(1);
        let data: Vec<String> = if self.summarize && o.edgeitems == 0 {
            vec!["...".into()]
        } else if self.summarize && n > 2 * o.edgeitems {
            let e = o.edgeitems;
            (0..e)
                .map(|i| self.f.format(self.vals[off + i]))
                .chain(std::iter::once(" ...".to_string()))
                .chain((n - e..n).map(|i| self.f.format(self.vals[off + i])))
                .collect()
        } else {
            (0..n).map(|i| self.f.format(self.vals[off + i])).collect()
        };
        let lines: Vec<String> = data.chunks(per_line).map(|c| c.join(", ")).collect();
        format!(
            "[{}]",
            lines.join(&format!(",\n{}", " ".repeat(indent + 1)))
        )
    }

    fn tensor(&self, shape: &[usize], off: usize, indent: usize) -> String {
        match shape.len() {
            0 => return self.f.format(self.vals[off]),
            1 => return self.vector(shape[0], off, indent),
            _ => {}
        }
        let n = shape[0];
        let inner: usize = shape[1..].iter().product();
        let e = self.o.edgeitems;
        let sub = |i: usize| self.tensor(&shape[1..], off + i * inner, indent + 1);
        let slices: Vec<String> = if self.summarize && n > 2 * e {
            (0..e)
                .map(sub)
                .chain(std::iter::once("...".to_string()))
                .chain((n - e..n).map(sub))
                .collect()
        } else {
            (0..n).map(sub).collect()
        };
        let sep = format!(
            ",{}{}",
            "\n".repeat(shape.len() - 1),
            " ".repeat(indent + 1)
        );
        format!("[{}]", slices.join(&sep))
    }
}

/// PyTorch's `_add_suffixes`: `, suffix` on the last line, or on a new line when it would
/// pass `linewidth`.
fn add_suffixes(body: &str, suffixes: &[String], indent: usize, linewidth: usize) -> String {
    let mut out = body.to_string();
    let mut last = match body.rfind('\n') {
        Some(i) => body.len() - i + 1,
        None => body.len() + 2,
    };
    for s in suffixes {
        if last + s.len() + 2 > linewidth {
            out.push_str(&format!(",\n{}{s}", " ".repeat(indent)));
            last = indent + s.len();
        } else {
            out.push_str(&format!(", {s}"));
            last += s.len() + 2;
        }
    }
    out.push(')');
    out
}

/// PyTorch's class name of a grad_fn node for an op name (`mul` -> `MulBackward0`).
pub fn grad_fn_class(op: &str) -> String {
    let special = match op {
        "matmul" => Some("MmBackward0"),
        "reshape" => Some("ViewBackward0"),
        "to" => Some("ToCopyBackward0"),
        "contiguous" => Some("CloneBackward0"),
        "layer_norm" => Some("NativeLayerNormBackward0"),
        "conv2d" => Some("ConvolutionBackward0"),
        "pad" => Some("ConstantPadNdBackward0"),
        "slice" => Some("SliceBackward0"),
        "where" => Some("WhereBackward0"),
        _ => None,
    };
    if let Some(s) = special {
        return s.to_string();
    }
    let mut s = String::new();
    for part in op.split('_').filter(|p| !p.is_empty()) {
        let mut c = part.chars();
        if let Some(f) = c.next() {
            s.extend(f.to_uppercase());
            s.push_str(c.as_str());
        }
    }
    s.push_str("Backward0");
    s
}

impl fmt::Display for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let o = get_printoptions();
        let Ok(vals) = self.to_vec_f64() else {
            return write!(f, "tensor(<unreadable>)");
        };
        let dt = self.dtype();
        let shape = self.shape().to_vec();
        let indent = "tensor(".len();
        let mut suffixes = Vec::new();
        let body = if vals.is_empty() {
            if shape.len() != 1 {
                let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
                suffixes.push(if dims.len() == 1 {
                    format!("size=({},)", dims[0])
                } else {
                    format!("size=({})", dims.join(", "))
                });
            }
            if dt != DType::F32 {
                suffixes.push(format!("dtype={}", dtype_repr(dt)));
            }
            "[]".to_string()
        } else {
            if o.edgeitems == 0 {
                let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
                suffixes.push(if dims.len() == 1 {
                    format!("size=({},)", dims[0])
                } else {
                    format!("size=({})", dims.join(", "))
                });
            }
            if !matches!(dt, DType::F32 | DType::I64 | DType::Bool) {
                suffixes.push(format!("dtype={}", dtype_repr(dt)));
            }
            let summarize = vals.len() > o.threshold;
            let fmt_vals: Vec<f64> = if summarize {
                let mut idx = Vec::new();
                summarized(&shape, 0, o.edgeitems, &mut idx);
                idx.into_iter().map(|i| vals[i]).collect()
            } else {
                vals.clone()
            };
            let p = Printer {
                vals: &vals,
                f: Formatter::new(&fmt_vals, dt, &o),
                o,
                summarize,
            };
            p.tensor(&shape, 0, indent)
        };
        if let Some(name) = self.grad_fn_name() {
            suffixes.push(format!("grad_fn=<{}>", grad_fn_class(&name)));
        } else if self.requires_grad() {
            suffixes.push("requires_grad=True".into());
        }
        write!(
            f,
            "{}",
            add_suffixes(&format!("tensor({body}"), &suffixes, indent, o.linewidth)
        )
    }
}

/// How a dtype appears in a tensor's repr: as the dtype's own repr (`deepseek.float64`,
/// where PyTorch writes `torch.float64`).
fn dtype_repr(dt: DType) -> String {
    format!("deepseek.{}", dt.name())
}
