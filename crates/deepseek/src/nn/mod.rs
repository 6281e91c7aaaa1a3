//! Neural-network building blocks: the [`Module`] trait (and `#[derive(Module)]`), layers
//! with PyTorch's names and initialisations, losses, and [`functional`].

pub(crate) mod attention_maps;
mod checkpoint;
pub mod functional;
mod layers;
pub mod llm;
mod loss;
pub(crate) mod module;
pub mod position_bias;
pub mod sparse_attention;
pub mod transformer;

pub use checkpoint::Checkpointed;
pub use deepseek_derive::Module;
pub use layers::{
    linear_maybe_packed, AvgPool2d, BatchNorm, BatchNorm1d, BatchNorm2d, Conv1d, Conv2d, Dropout,
    Embedding, Forward, Gru, Layer, LayerNorm, Linear, Lstm, MaxPool2d, MultiheadAttention, ReLU,
    RmsNorm, RnnConfig, RnnWeights, Sequential, Tanh, TransformerEncoderLayer, GELU,
};
pub use llm::{GroupedQueryAttention, KvCache, RopeLayout, RotaryEmbedding, SwiGLU};
pub use loss::{BCEWithLogitsLoss, CrossEntropyLoss, MSELoss};
pub use module::Module;
pub use module::{
    join, load_safetensors, parse_safetensors, save_safetensors, write_atomic, TrainFlag, Visit,
    Visitor,
};
pub use sparse_attention::SparseAttention;
pub use transformer::{
    generate_square_subsequent_mask, DecoderMasks, Transformer, TransformerConfig,
    TransformerDecoder, TransformerDecoderLayer, TransformerEncoder,
};
