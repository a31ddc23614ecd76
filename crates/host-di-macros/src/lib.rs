//! `#[derive(Injectable)]` for host-di. Use it through host-di (feature
//! `derive`, on by default), whose crate docs describe the attributes.
//!
//! # Dependencies
//!
//! | crate | why |
//! |---|---|
//! | `syn`, `quote`, `proc-macro2` | parsing the struct and writing the impl |
//! | `proc-macro-crate` | finding host-di under its name in the user's `Cargo.toml` (`host-di`, renamed, or through the `host` facade) |

mod attributes;
mod expand;

use proc_macro::TokenStream;

/// Implements `host_di::Injectable`: each field is resolved from the
/// provider by its type; `#[injectable(as = dyn Trait)]` also implements
/// `IntoService<dyn Trait>`.
#[proc_macro_derive(Injectable, attributes(injectable, inject))]
pub fn derive_injectable(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    expand::injectable(&input)
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
