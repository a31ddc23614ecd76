//! The derive's attributes: `#[injectable(..)]` on the type and
//! `#[inject(..)]` on fields.

use syn::{Attribute, LitStr, Path, Type};

/// `#[injectable(as = dyn Trait, dispose, async_dispose, crate = path)]`
#[derive(Default)]
pub(crate) struct TypeAttributes {
    pub(crate) services: Vec<Type>,
    pub(crate) dispose: bool,
    pub(crate) async_dispose: bool,
    pub(crate) krate: Option<Path>,
}

impl TypeAttributes {
    pub(crate) fn parse(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut parsed = Self::default();
        for attr in attrs
            .iter()
            .filter(|attr| attr.path().is_ident("injectable"))
        {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("as") {
                    parsed.services.push(meta.value()?.parse()?);
                } else if meta.path.is_ident("dispose") {
                    parsed.dispose = true;
                } else if meta.path.is_ident("async_dispose") {
                    parsed.async_dispose = true;
                } else if meta.path.is_ident("crate") {
                    parsed.krate = Some(meta.value()?.parse()?);
                } else {
                    return Err(meta.error(
                        "unknown `injectable` attribute; expected `as = dyn Trait`, `dispose`, \
                         `async_dispose` or `crate = path`",
                    ));
                }
                Ok(())
            })?;
        }
        if parsed.dispose && parsed.async_dispose {
            return Err(syn::Error::new_spanned(
                &attrs[0],
                "choose one of `dispose` and `async_dispose`",
            ));
        }
        Ok(parsed)
    }
}

/// How a field is filled.
pub(crate) enum FieldSource {
    /// `<T as Resolvable>::resolve`
    Resolve,
    /// `<T as ResolvableKeyed>::resolve_keyed(key)`
    Keyed(LitStr),
    /// `Default::default()`
    Default,
}

impl FieldSource {
    pub(crate) fn parse(attrs: &[Attribute]) -> syn::Result<Self> {
        let mut source = Self::Resolve;
        for attr in attrs.iter().filter(|attr| attr.path().is_ident("inject")) {
            attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("key") {
                    source = Self::Keyed(meta.value()?.parse()?);
                } else if meta.path.is_ident("default") {
                    source = Self::Default;
                } else {
                    return Err(meta.error(
                        "unknown `inject` attribute; expected `key = \"name\"` or `default`",
                    ));
                }
                Ok(())
            })?;
        }
        Ok(source)
    }
}
