//! The protobuf encoding of the ONNX messages the exporter writes, declared by hand with the
//! field numbers of `onnx.proto` (ModelProto, GraphProto, NodeProto, AttributeProto,
//! TensorProto, ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto).
//! Repeated scalars are written unpacked (each element its own field), which every protobuf
//! reader accepts for proto2 `repeated` fields.

use super::{Attr, Dim, Model, Node, ValueInfo};
use crate::{DType, Error, Result, Tensor};

/// ONNX IR version 8 (ONNX 1.10+, the version that goes with opsets up to 17/18).
pub const IR_VERSION: i64 = 8;

/// A protobuf message being written.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }
    fn key(&mut self, field: u32, wire: u32) {
        self.varint(((field << 3) | wire) as u64);
    }
    /// An int32/int64/enum field (negative values as 10-byte two's complement, as protobuf).
    pub fn int(&mut self, field: u32, v: i64) {
        self.key(field, 0);
        self.varint(v as u64);
    }
    /// A 32-bit float field.
    pub fn float(&mut self, field: u32, v: f32) {
        self.key(field, 5);
        self.buf.extend_from_slice(&v.to_le_bytes());
    }
    /// A bytes/string field.
    pub fn bytes(&mut self, field: u32, b: &[u8]) {
        self.key(field, 2);
        self.varint(b.len() as u64);
        self.buf.extend_from_slice(b);
    }
    pub fn string(&mut self, field: u32, s: &str) {
        self.bytes(field, s.as_bytes());
    }
    /// An embedded message field.
    pub fn message(&mut self, field: u32, m: Writer) {
        self.bytes(field, &m.buf);
    }
}

fn tensor_proto(name: &str, t: &Tensor) -> Result<Writer> {
    let mut w = Writer::default();
    for &d in t.shape() {
        w.int(1, d as i64);
    }
    w.int(2, super::ElemType::of(t.dtype()) as i64);
    w.string(8, name);
    let t = t.detach();
    let raw: Vec<u8> = match t.dtype() {
        DType::F32 => t
            .to_vec::<f32>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::F64 => t
            .to_vec::<f64>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::I64 => t
            .to_vec::<i64>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::I32 => t
            .to_vec::<i32>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::U8 => t.to_vec::<u8>()?,
        DType::Bool => t.to_vec::<bool>()?.iter().map(|&v| v as u8).collect(),
        DType::F16 => t
            .to_vec::<half::f16>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
        DType::BF16 => t
            .to_vec::<half::bf16>()?
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect(),
    };
    w.bytes(9, &raw);
    Ok(w)
}

fn value_info(v: &ValueInfo) -> Writer {
    let mut shape = Writer::default();
    for d in &v.dims {
        let mut dim = Writer::default();
        match d {
            Dim::Fixed(n) => dim.int(1, *n),
            Dim::Param(s) => dim.string(2, s),
        }
        shape.message(1, dim);
    }
    let mut tt = Writer::default();
    tt.int(1, v.elem as i64);
    tt.message(2, shape);
    let mut ty = Writer::default();
    ty.message(1, tt);
    let mut w = Writer::default();
    w.string(1, &v.name);
    w.message(2, ty);
    w
}

fn attribute(name: &str, a: &Attr) -> Result<Writer> {
    if name.is_empty() {
        return Err(Error::value("onnx.export", "an attribute name is empty"));
    }
    let mut w = Writer::default();
    w.string(1, name);
    // AttributeProto.AttributeType: FLOAT 1, INT 2, STRING 3, FLOATS 6, INTS 7, STRINGS 8
    match a {
        Attr::Float(f) => {
            w.float(2, *f);
            w.int(20, 1);
        }
        Attr::Int(i) => {
            w.int(3, *i);
            w.int(20, 2);
        }
        Attr::Str(s) => {
            w.string(4, s);
            w.int(20, 3);
        }
        Attr::Floats(v) => {
            for f in v {
                w.float(7, *f);
            }
            w.int(20, 6);
        }
        Attr::Ints(v) => {
            for i in v {
                w.int(8, *i);
            }
            w.int(20, 7);
        }
        Attr::Strings(v) => {
            for s in v {
                w.string(9, s);
            }
            w.int(20, 8);
        }
    }
    Ok(w)
}

fn node(n: &Node) -> Result<Writer> {
    let mut w = Writer::default();
    for i in &n.inputs {
        w.string(1, i);
    }
    for o in &n.outputs {
        w.string(2, o);
    }
    w.string(3, &n.name);
    w.string(4, &n.op_type);
    for (k, a) in &n.attrs {
        w.message(5, attribute(k, a)?);
    }
    Ok(w)
}

/// Encodes a (validated) model as `ModelProto` bytes.
pub fn encode_model(m: &Model) -> Result<Vec<u8>> {
    let mut g = Writer::default();
    for n in &m.nodes {
        g.message(1, node(n)?);
    }
    g.string(2, &m.graph_name);
    for (name, t) in &m.initializers {
        g.message(5, tensor_proto(name, t)?);
    }
    for v in &m.inputs {
        g.message(11, value_info(v));
    }
    for v in &m.outputs {
        g.message(12, value_info(v));
    }
    let mut w = Writer::default();
    w.int(1, IR_VERSION);
    w.string(2, &m.producer);
    w.string(3, env!("CARGO_PKG_VERSION"));
    w.message(7, g);
    let mut opset = Writer::default();
    opset.string(1, "");
    opset.int(2, m.opset);
    w.message(8, opset);
    Ok(w.buf)
}
