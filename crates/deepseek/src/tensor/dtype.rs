//! Element types and PyTorch's type-promotion rules.

use std::fmt;

/// The element type of a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    Bool,
    U8,
    I32,
    I64,
    F16,
    BF16,
    F32,
    F64,
}

impl DType {
    /// Size of one element in bytes.
    pub fn size_in_bytes(self) -> usize {
        match self {
            DType::Bool | DType::U8 => 1,
            DType::F16 | DType::BF16 => 2,
            DType::I32 | DType::F32 => 4,
            DType::I64 | DType::F64 => 8,
        }
    }
    /// True for f16, bf16, f32, f64.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::BF16 | DType::F32 | DType::F64)
    }
    /// True for u8, i32, i64 (not bool).
    pub fn is_int(self) -> bool {
        matches!(self, DType::U8 | DType::I32 | DType::I64)
    }
    /// PyTorch's name without the `torch.` prefix (`float32`, `int64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::U8 => "uint8",
            DType::I32 => "int32",
            DType::I64 => "int64",
            DType::F16 => "float16",
            DType::BF16 => "bfloat16",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }
    /// Parses PyTorch's names and the safetensors names (`F32`, `I64`, ...).
    pub fn parse(s: &str) -> Option<DType> {
        Some(match s {
            "bool" | "BOOL" => DType::Bool,
            "uint8" | "U8" => DType::U8,
            "int32" | "int" | "I32" => DType::I32,
            "int64" | "long" | "I64" => DType::I64,
            "float16" | "half" | "F16" => DType::F16,
            "bfloat16" | "BF16" => DType::BF16,
            "float32" | "float" | "F32" => DType::F32,
            "float64" | "double" | "F64" => DType::F64,
            _ => return None,
        })
    }
    fn category(self) -> u8 {
        match self {
            DType::Bool => 0,
            DType::U8 | DType::I32 | DType::I64 => 1,
            _ => 2,
        }
    }
    /// The result dtype of a binary op between two tensors (PyTorch's `promote_types`).
    pub fn promote(a: DType, b: DType) -> DType {
        use DType::*;
        if a == b {
            return a;
        }
        match (a, b) {
            (F16, BF16) | (BF16, F16) => F32,
            _ if a.category() != b.category() => {
                if a.category() > b.category() {
                    a
                } else {
                    b
                }
            }
            _ => a.max(b),
        }
    }
    /// The result dtype of a binary op between operands of dtypes `a` and `b`, where `a_0d`
    /// / `b_0d` say which operand is a 0-d tensor (PyTorch's `result_type`): a 0-d tensor
    /// meeting a dimensioned one counts only by category (bool < integer < float), so
    /// `f32 tensor + f64 0-d` is f32 and `i64 tensor + f64 0-d` is f64.
    pub fn result_type(a: DType, a_0d: bool, b: DType, b_0d: bool) -> DType {
        if a_0d != b_0d && a.category() == b.category() {
            if a_0d {
                b
            } else {
                a
            }
        } else {
            DType::promote(a, b)
        }
    }
    /// The result dtype of a tensor combined with a Python-style scalar
    /// (`is_float_scalar` for a float scalar): a float scalar lifts integer and bool tensors
    /// to the default float dtype (f32); an int scalar lifts only bool tensors to i64.
    pub fn promote_scalar(t: DType, is_float_scalar: bool) -> DType {
        if is_float_scalar {
            if t.is_float() {
                t
            } else {
                DType::F32
            }
        } else if t == DType::Bool {
            DType::I64
        } else {
            t
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())
    }
}
