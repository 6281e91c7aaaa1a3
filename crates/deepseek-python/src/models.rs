//! Pretrained models and tokenizers from Python: `deepseek.models.from_pretrained(path)`
//! (over `deepseek::models`) and `deepseek.tokenizers.Tokenizer` (over
//! `deepseek::tokenizers`).

use crate::tensor::{as_tensor, opt_tensor, PyTensor};
use crate::IntoPy;
use deepseek::models::{GenerateOptions, PretrainedModel};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};

/// A Hugging Face model loaded by `deepseek.models.from_pretrained`. Calling it with
/// `input_ids` (and `attention_mask`) returns a tuple like `transformers`' models: BERT
/// `(last_hidden_state, pooler_output)`, GPT-2 / Llama `(logits,)`; `output_attentions=True`
/// appends a tuple of one attention map [B, heads, T, T] per layer.
#[pyclass(name = "PretrainedModel", module = "deepseek.models")]
pub struct PyPretrainedModel {
    m: PretrainedModel,
}

fn ids_arg(o: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    if let Ok(t) = o.cast::<PyTensor>() {
        let t = t.borrow().t.clone();
        return t
            .to_dtype(deepseek::DType::I64)
            .and_then(|t| t.to_vec::<i64>())
            .py();
    }
    o.extract::<Vec<i64>>()
}

#[pymethods]
impl PyPretrainedModel {
    /// The architecture (`"bert"`, `"gpt2"`, `"llama"`).
    #[getter]
    fn model_type(&self) -> &'static str {
        self.m.model_type()
    }

    /// Runs the model; returns a tuple of tensors (see the class doc). With
    /// `output_attentions=True` the tuple ends with one more item, a tuple of one attention
    /// map [B, heads, T, T] per layer (`transformers`' `attentions`).
    #[pyo3(signature = (input_ids, attention_mask=None, output_attentions=false))]
    fn forward<'py>(
        &self,
        py: Python<'py>,
        input_ids: &Bound<'py, PyAny>,
        attention_mask: Option<&Bound<'py, PyAny>>,
        output_attentions: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let ids = as_tensor(input_ids)?;
        let mask = opt_tensor(attention_mask)?;
        if !output_attentions {
            let out = py.detach(|| self.m.forward(&ids, mask.as_ref())).py()?;
            return PyTuple::new(py, out.into_iter().map(|t| PyTensor { t }));
        }
        let (out, maps) = py
            .detach(|| self.m.forward_with_attentions(&ids, mask.as_ref()))
            .py()?;
        let maps = PyTuple::new(py, maps.into_iter().map(|t| PyTensor { t }))?;
        let mut items: Vec<Bound<'py, PyAny>> = out
            .into_iter()
            .map(|t| Bound::new(py, PyTensor { t }).map(Bound::into_any))
            .collect::<PyResult<_>>()?;
        items.push(maps.into_any());
        PyTuple::new(py, items)
    }

    #[pyo3(signature = (input_ids, attention_mask=None, output_attentions=false))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        input_ids: &Bound<'py, PyAny>,
        attention_mask: Option<&Bound<'py, PyAny>>,
        output_attentions: bool,
    ) -> PyResult<Bound<'py, PyTuple>> {
        self.forward(py, input_ids, attention_mask, output_attentions)
    }

    /// Generates after `input_ids` (a list of ints or a [1, T] / [T] tensor) with a KV cache
    /// and returns the new token ids. Greedy unless `do_sample`; `streamer(token_id)` is
    /// called for each token as it comes; generation stops after `eos_token_id` (an int or
    /// a list).
    #[pyo3(signature = (input_ids, max_new_tokens=32, do_sample=false, temperature=1.0, top_k=0, top_p=1.0, repetition_penalty=1.0, eos_token_id=None, streamer=None))]
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        input_ids: &Bound<'_, PyAny>,
        max_new_tokens: usize,
        do_sample: bool,
        temperature: f64,
        top_k: usize,
        top_p: f64,
        repetition_penalty: f64,
        eos_token_id: Option<&Bound<'_, PyAny>>,
        streamer: Option<Py<PyAny>>,
    ) -> PyResult<Vec<i64>> {
        let prompt = ids_arg(input_ids)?;
        let stop_tokens = match eos_token_id {
            None => vec![],
            Some(o) if o.is_none() => vec![],
            Some(o) => o
                .extract::<Vec<i64>>()
                .or_else(|_| o.extract::<i64>().map(|t| vec![t]))?,
        };
        if do_sample && temperature <= 0.0 {
            return Err(PyValueError::new_err(
                "temperature must be positive when do_sample=True",
            ));
        }
        let opts = GenerateOptions {
            max_new_tokens,
            temperature: if do_sample { temperature } else { 0.0 },
            top_k,
            top_p,
            repetition_penalty,
            stop_tokens,
        };
        let py = input_ids.py();
        let mut cb_err: Option<PyErr> = None;
        let res = self.m.generate(&prompt, &opts, &mut |t| {
            if let Some(s) = &streamer {
                if let Err(e) = s.call1(py, (t,)) {
                    cb_err = Some(e);
                    return Err(deepseek::Error::Msg(
                        "the streamer raised an exception".into(),
                    ));
                }
            }
            Ok(())
        });
        if let Some(e) = cb_err {
            return Err(e);
        }
        res.py()
    }

    /// `(name, tensor)` pairs with Hugging Face names.
    fn named_parameters(&self) -> Vec<(String, PyTensor)> {
        self.m
            .named_parameters()
            .into_iter()
            .map(|(n, t)| (n, PyTensor { t }))
            .collect()
    }

    /// The parameters as a dict (Hugging Face names).
    fn state_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (n, t) in self.m.named_parameters() {
            d.set_item(n, PyTensor { t: t.detach() })?;
        }
        Ok(d)
    }

    fn __repr__(&self) -> String {
        let n: usize = self
            .m
            .named_parameters()
            .iter()
            .map(|(_, t)| t.numel())
            .sum();
        format!(
            "PretrainedModel(model_type={:?}, parameters={n})",
            self.m.model_type()
        )
    }
}

/// Loads a Hugging Face model directory (`config.json` + `model.safetensors`).
#[pyfunction]
fn models_from_pretrained(py: Python<'_>, path: std::path::PathBuf) -> PyResult<PyPretrainedModel> {
    let m = py
        .detach(|| deepseek::models::from_pretrained(&path))
        .py()?;
    Ok(PyPretrainedModel { m })
}

/// A Hugging Face `tokenizer.json` tokenizer.
#[pyclass(name = "Tokenizer", module = "deepseek.tokenizers")]
pub struct PyTokenizer {
    t: deepseek::tokenizers::Tokenizer,
}

#[pymethods]
impl PyTokenizer {
    /// Reads a `tokenizer.json`, or the tokenizer inside a GGUF file.
    #[staticmethod]
    fn from_file(path: std::path::PathBuf) -> PyResult<PyTokenizer> {
        Ok(PyTokenizer {
            t: deepseek::tokenizers::Tokenizer::from_file(&path).py()?,
        })
    }
    /// Parses the JSON text of a `tokenizer.json`.
    #[staticmethod]
    #[allow(clippy::should_implement_trait)]
    fn from_str(json: &str) -> PyResult<PyTokenizer> {
        Ok(PyTokenizer {
            t: deepseek::tokenizers::Tokenizer::from_json(json).py()?,
        })
    }
    /// The tokenizer stored in a GGUF file (byte-level BPE), with its chat template.
    #[staticmethod]
    fn from_gguf(path: std::path::PathBuf) -> PyResult<PyTokenizer> {
        Ok(PyTokenizer {
            t: deepseek::tokenizers::Tokenizer::from_gguf_file(&path).py()?,
        })
    }
    /// The chat template that came with the tokenizer, or None.
    #[getter]
    fn chat_template(&self) -> Option<String> {
        self.t.chat_template().map(str::to_string)
    }
    /// `transformers`' `apply_chat_template`: `messages` is a list of
    /// `{"role": ..., "content": ...}`; returns the text, or its token ids with
    /// `tokenize=True`. ChatML templates are supported.
    #[pyo3(signature = (messages, tokenize=false, add_generation_prompt=false))]
    fn apply_chat_template<'py>(
        &self,
        py: Python<'py>,
        messages: Vec<Bound<'py, PyDict>>,
        tokenize: bool,
        add_generation_prompt: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut pairs = Vec::with_capacity(messages.len());
        for m in &messages {
            let get = |k: &str| -> PyResult<String> {
                m.get_item(k)?
                    .ok_or_else(|| {
                        PyValueError::new_err(format!("each message needs a {k:?} entry"))
                    })?
                    .extract()
            };
            pairs.push((get("role")?, get("content")?));
        }
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(r, c)| (r.as_str(), c.as_str()))
            .collect();
        let text = self
            .t
            .apply_chat_template(&refs, add_generation_prompt)
            .py()?;
        if tokenize {
            Ok(self
                .t
                .encode(&text, false)
                .py()?
                .into_pyobject(py)?
                .into_any())
        } else {
            Ok(text.into_pyobject(py)?.into_any())
        }
    }
    /// Turns off the fixed-length padding the file may configure.
    fn no_padding(&mut self) {
        self.t.no_padding();
    }
    /// Turns off truncation.
    fn no_truncation(&mut self) -> PyResult<()> {
        self.t.no_truncation().py()
    }
    /// Token ids of `text`.
    #[pyo3(signature = (text, add_special_tokens=true))]
    fn encode(&self, text: &str, add_special_tokens: bool) -> PyResult<Vec<i64>> {
        self.t.encode(text, add_special_tokens).py()
    }
    /// Token strings of `text`.
    #[pyo3(signature = (text, add_special_tokens=true))]
    fn tokenize(&self, text: &str, add_special_tokens: bool) -> PyResult<Vec<String>> {
        self.t.tokenize(text, add_special_tokens).py()
    }
    /// Text of `ids`.
    #[pyo3(signature = (ids, skip_special_tokens=true))]
    fn decode(&self, ids: Vec<i64>, skip_special_tokens: bool) -> PyResult<String> {
        self.t.decode(&ids, skip_special_tokens).py()
    }
    /// `{"input_ids": Tensor, "attention_mask": Tensor}` (int64 [B, L]) for a text or a
    /// list of texts, right-padded to the longest.
    #[pyo3(signature = (texts, add_special_tokens=true))]
    fn __call__<'py>(
        &self,
        py: Python<'py>,
        texts: &Bound<'py, PyAny>,
        add_special_tokens: bool,
    ) -> PyResult<Bound<'py, PyDict>> {
        let v: Vec<String> = if let Ok(s) = texts.extract::<String>() {
            vec![s]
        } else if texts.cast::<PyList>().is_ok() || texts.cast::<PyTuple>().is_ok() {
            texts.extract()?
        } else {
            return Err(PyValueError::new_err("expected a str or a list of str"));
        };
        let refs: Vec<&str> = v.iter().map(|s| s.as_str()).collect();
        let (ids, mask) = self.t.encode_batch(&refs, add_special_tokens).py()?;
        let d = PyDict::new(py);
        d.set_item("input_ids", PyTensor { t: ids })?;
        d.set_item("attention_mask", PyTensor { t: mask })?;
        Ok(d)
    }
    /// Size of the vocabulary, added tokens included.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.t.vocab_size()
    }
    /// The id of a token string, or None.
    fn token_to_id(&self, token: &str) -> Option<i64> {
        self.t.token_to_id(token)
    }
    /// The string of a token id, or None.
    fn id_to_token(&self, id: i64) -> Option<String> {
        self.t.id_to_token(id)
    }
}

/// Opens an attention-recording scope on this thread (`deepseek.nn.capture_attention`;
/// see `deepseek::nn::functional::record_attention`).
#[pyfunction]
fn _attention_recording_begin() {
    deepseek::nn::functional::begin_attention_recording();
}

/// Closes the innermost attention-recording scope and returns its maps in call order.
#[pyfunction]
fn _attention_recording_end() -> Vec<PyTensor> {
    deepseek::nn::functional::end_attention_recording()
        .into_iter()
        .map(|t| PyTensor { t })
        .collect()
}

/// Whether an attention-recording scope is open on this thread.
#[pyfunction]
fn _is_recording_attention() -> bool {
    deepseek::nn::functional::is_recording_attention()
}

/// Hands an attention map to the innermost recording scope (attention layers written in
/// Python that compute their probabilities themselves).
#[pyfunction]
fn _record_attention_map(p: &PyTensor) {
    deepseek::nn::functional::record_attention_map(&p.t);
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(_attention_recording_begin, m)?)?;
    m.add_function(wrap_pyfunction!(_attention_recording_end, m)?)?;
    m.add_function(wrap_pyfunction!(_is_recording_attention, m)?)?;
    m.add_function(wrap_pyfunction!(_record_attention_map, m)?)?;
    m.add_class::<PyPretrainedModel>()?;
    m.add_class::<PyTokenizer>()?;
    m.add_function(wrap_pyfunction!(models_from_pretrained, m)?)?;
    Ok(())
}
