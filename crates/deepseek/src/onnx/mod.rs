//! ONNX model writing: an ONNX graph (nodes, initializers, inputs and outputs with fixed or
//! symbolic dimensions) encoded as the `onnx.ModelProto` protobuf.
//!
//! The messages are declared by hand ([`proto`]: only the fields an exporter writes, with
//! the field numbers of `onnx.proto`, IR version 8), so no `protoc` and no code generator are
//! needed. The exporter that builds graphs from models is the Python front
//! `deepseek.onnx.export(model, args, path, opset_version=17, input_names, output_names,
//! dynamic_axes)`, which traces a forward run (known layers as units, common tensor ops one
//! by one) and hands the graph to [`Model::save`]. Checked by `onnx.checker.check_model(
//! full_check=True)` and ONNX Runtime in python/tests/test_onnx.py.
//!
//! ```
//! use deepseek::onnx::{Attr, Dim, Model, Node, ValueInfo, ElemType};
//! use deepseek::Tensor;
//! let mut m = Model::new("mlp", 17);
//! m.inputs.push(ValueInfo::new("x", ElemType::Float, vec![Dim::Param("batch".into()), Dim::Fixed(2)]));
//! m.initializers.push(("w".into(), Tensor::from_vec(vec![1.0f32, 2.0, 3.0, 4.0], &[2, 2])?));
//! m.nodes.push(Node::new("MatMul", &["x", "w"], &["y"]));
//! m.nodes.push(Node::new("LeakyRelu", &["y"], &["out"]).attr("alpha", Attr::Float(0.1)));
//! m.outputs.push(ValueInfo::new("out", ElemType::Float, vec![Dim::Param("batch".into()), Dim::Fixed(2)]));
//! let bytes = m.encode()?;
//! // a name read before anything defines it is an error
//! m.nodes.swap(0, 1);
//! assert!(m.encode().is_err());
//! assert!(bytes.len() > 16);
//! # Ok::<(), deepseek::Error>(())
//! ```

pub mod proto;

use crate::{DType, Error, Result, Tensor};
use std::collections::HashSet;

/// ONNX `TensorProto.DataType` values of the element types the exporter writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElemType {
    Float = 1,
    Uint8 = 2,
    Int8 = 3,
    Int32 = 6,
    Int64 = 7,
    Bool = 9,
    Float16 = 10,
    Double = 11,
    Bfloat16 = 16,
}

impl ElemType {
    /// The ONNX element type of a deepseek dtype.
    pub fn of(d: DType) -> ElemType {
        match d {
            DType::F32 => ElemType::Float,
            DType::F64 => ElemType::Double,
            DType::F16 => ElemType::Float16,
            DType::BF16 => ElemType::Bfloat16,
            DType::I64 => ElemType::Int64,
            DType::I32 => ElemType::Int32,
            DType::U8 => ElemType::Uint8,
            DType::Bool => ElemType::Bool,
        }
    }
    /// Parses a deepseek dtype name (`float32`, `int64`, ...) or ONNX's (`float`, `int8`).
    pub fn from_name(s: &str) -> Result<ElemType> {
        Ok(match s {
            "float32" | "float" => ElemType::Float,
            "float64" | "double" => ElemType::Double,
            "float16" => ElemType::Float16,
            "bfloat16" => ElemType::Bfloat16,
            "int64" => ElemType::Int64,
            "int32" => ElemType::Int32,
            "uint8" => ElemType::Uint8,
            "int8" => ElemType::Int8,
            "bool" => ElemType::Bool,
            _ => {
                return Err(Error::value(
                    "onnx",
                    format!("element type {s:?} has no ONNX form here"),
                ))
            }
        })
    }
}

/// A dimension of a graph input or output: a number, or a symbolic name (a dynamic axis).
#[derive(Clone, Debug, PartialEq)]
pub enum Dim {
    Fixed(i64),
    Param(String),
}

/// A named, typed graph input or output.
#[derive(Clone, Debug)]
pub struct ValueInfo {
    pub name: String,
    pub elem: ElemType,
    pub dims: Vec<Dim>,
}

impl ValueInfo {
    pub fn new(name: &str, elem: ElemType, dims: Vec<Dim>) -> Self {
        ValueInfo {
            name: name.into(),
            elem,
            dims,
        }
    }
}

/// A node attribute.
#[derive(Clone, Debug, PartialEq)]
pub enum Attr {
    Float(f32),
    Int(i64),
    Str(String),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
    Strings(Vec<String>),
}

/// One operator application.
#[derive(Clone, Debug)]
pub struct Node {
    pub op_type: String,
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    pub attrs: Vec<(String, Attr)>,
}

impl Node {
    /// A node named after its first output. An empty input name marks an omitted optional
    /// input, as in ONNX.
    pub fn new(op_type: &str, inputs: &[&str], outputs: &[&str]) -> Node {
        Node {
            op_type: op_type.into(),
            name: outputs.first().map(|s| s.to_string()).unwrap_or_default(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
            outputs: outputs.iter().map(|s| s.to_string()).collect(),
            attrs: Vec::new(),
        }
    }
    /// Adds an attribute.
    pub fn attr(mut self, name: &str, a: Attr) -> Node {
        self.attrs.push((name.into(), a));
        self
    }
}

/// An ONNX model: one graph and the default-domain opset it uses.
#[derive(Clone, Debug)]
pub struct Model {
    pub graph_name: String,
    pub opset: i64,
    pub producer: String,
    pub inputs: Vec<ValueInfo>,
    pub outputs: Vec<ValueInfo>,
    pub initializers: Vec<(String, Tensor)>,
    pub nodes: Vec<Node>,
}

impl Model {
    pub fn new(graph_name: &str, opset: i64) -> Model {
        Model {
            graph_name: graph_name.into(),
            opset,
            producer: "deepseek".into(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            initializers: Vec::new(),
            nodes: Vec::new(),
        }
    }

    /// Checks that every name is defined once before use (inputs, initializers, then node
    /// outputs in order) and that every graph output is defined.
    pub fn validate(&self) -> Result<()> {
        if !(7..=21).contains(&self.opset) {
            return Err(Error::value(
                "onnx.export",
                format!("opset_version {} is not supported (7 to 21)", self.opset),
            ));
        }
        let define = |n: &'static str, s: &str, set: &mut HashSet<String>| -> Result<()> {
            if s.is_empty() || !set.insert(s.to_string()) {
                return Err(Error::value(
                    "onnx.export",
                    format!("{n} name {s:?} is empty or defined twice"),
                ));
            }
            Ok(())
        };
        let mut set = HashSet::new();
        for v in &self.inputs {
            define("input", &v.name, &mut set)?;
        }
        for (n, _) in &self.initializers {
            define("initializer", n, &mut set)?;
        }
        for node in &self.nodes {
            for i in &node.inputs {
                if !i.is_empty() && !set.contains(i) {
                    return Err(Error::value(
                        "onnx.export",
                        format!(
                            "node {:?} ({}) reads {i:?}, which nothing defines before it",
                            node.name, node.op_type
                        ),
                    ));
                }
            }
            for o in &node.outputs {
                if !o.is_empty() {
                    define("node output", o, &mut set)?;
                }
            }
        }
        for o in &self.outputs {
            if !set.contains(&o.name) {
                return Err(Error::value(
                    "onnx.export",
                    format!("graph output {:?} is not defined by the graph", o.name),
                ));
            }
        }
        Ok(())
    }

    /// The `ModelProto` bytes.
    pub fn encode(&self) -> Result<Vec<u8>> {
        self.validate()?;
        proto::encode_model(self)
    }

    /// Writes the model to `path` (through a temporary file, then renamed).
    pub fn save(&self, path: &std::path::Path) -> Result<()> {
        let bytes = self.encode()?;
        let tmp = path.with_extension("onnx.tmp");
        let io = |e: std::io::Error| Error::Io {
            path: path.display().to_string(),
            msg: format!("onnx.export: {e}"),
        };
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }
}
