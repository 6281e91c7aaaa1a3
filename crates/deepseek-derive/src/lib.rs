//! `#[derive(Module)]`: finds parameters, buffers and sub-modules by field name so that a
//! struct gets PyTorch's `named_parameters` / `state_dict` names (`lstm.weight_ih_l0`,
//! `fc.bias`, `layers.0.weight`).
//!
//! Field rules:
//! - `Tensor` fields are parameters; `#[module(buffer)]` makes one a buffer.
//! - `Vec<T>`, `Option<T>`, `Box<T>` of visitable types are walked (`layers.0`, ...).
//! - `#[module(skip)]` fields, and fields of plain types (numbers, bool, String, and
//!   Option/Vec of them), are ignored.
//! - Every other field must implement `deepseek::nn::Visit` (every layer and every derived
//!   module does).
//! - `#[module(name = "x")]` renames a field in the state dict.

use proc_macro::TokenStream;
use quote::quote;
use syn::{parse_macro_input, Data, DeriveInput, Fields, Type};

const PLAIN: &[&str] = &[
    "usize", "isize", "u8", "u16", "u32", "u64", "i8", "i16", "i32", "i64", "f32", "f64", "bool",
    "String", "char", "DType", "Device",
];

fn is_plain(ty: &Type) -> bool {
    let s = quote!(#ty).to_string().replace(' ', "");
    let inner = s
        .strip_prefix("Option<")
        .or_else(|| s.strip_prefix("Vec<"))
        .and_then(|r| r.strip_suffix('>'))
        .unwrap_or(&s)
        .to_string();
    let last = inner.rsplit("::").next().unwrap_or(&inner).to_string();
    PLAIN.contains(&last.as_str())
        || inner.starts_with('(')
        || inner.starts_with('[')
        || inner.starts_with('&')
}

fn is_tensor(ty: &Type) -> bool {
    let s = quote!(#ty).to_string().replace(' ', "");
    s == "Tensor" || s.ends_with("::Tensor")
}

/// Derives `deepseek::nn::Visit` and `deepseek::nn::Module` for a struct.
#[proc_macro_derive(Module, attributes(module))]
pub fn derive_module(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    let name = &input.ident;
    let (impl_g, ty_g, where_g) = input.generics.split_for_impl();
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(f) => f.named.iter().collect::<Vec<_>>(),
            Fields::Unit => Vec::new(),
            Fields::Unnamed(_) => {
                return syn::Error::new_spanned(name, "#[derive(Module)] needs named fields")
                    .to_compile_error()
                    .into()
            }
        },
        _ => {
            return syn::Error::new_spanned(name, "#[derive(Module)] works on structs")
                .to_compile_error()
                .into()
        }
    };
    let mut visits = Vec::new();
    let mut trains = Vec::new();
    for f in fields {
        let ident = f.ident.as_ref().expect("named");
        let mut skip = false;
        let mut buffer = false;
        let mut rename: Option<String> = None;
        for attr in &f.attrs {
            if !attr.path().is_ident("module") {
                continue;
            }
            let r = attr.parse_nested_meta(|m| {
                if m.path.is_ident("skip") {
                    skip = true;
                } else if m.path.is_ident("buffer") {
                    buffer = true;
                } else if m.path.is_ident("name") {
                    let s: syn::LitStr = m.value()?.parse()?;
                    rename = Some(s.value());
                } else {
                    return Err(m.error("expected `skip`, `buffer` or `name = \"...\"`"));
                }
                Ok(())
            });
            if let Err(e) = r {
                return e.to_compile_error().into();
            }
        }
        if skip || is_plain(&f.ty) {
            continue;
        }
        let key = rename.unwrap_or_else(|| ident.to_string().trim_start_matches("r#").to_string());
        if buffer {
            if !is_tensor(&f.ty) {
                return syn::Error::new_spanned(
                    &f.ty,
                    "#[module(buffer)] must be on a Tensor field",
                )
                .to_compile_error()
                .into();
            }
            visits.push(quote! { v.buffer(&::deepseek::nn::join(prefix, #key), &self.#ident); });
        } else {
            visits.push(quote! { ::deepseek::nn::Visit::visit(&self.#ident, &::deepseek::nn::join(prefix, #key), v); });
            trains.push(quote! { ::deepseek::nn::Visit::set_train(&mut self.#ident, on); });
        }
    }
    quote! {
        impl #impl_g ::deepseek::nn::Visit for #name #ty_g #where_g {
            fn visit(&self, prefix: &str, v: &mut dyn ::deepseek::nn::Visitor) {
                #(#visits)*
            }
            fn set_train(&mut self, on: bool) {
                #(#trains)*
            }
        }
        impl #impl_g ::deepseek::nn::Module for #name #ty_g #where_g {}
    }
    .into()
}
