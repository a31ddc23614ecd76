//! Writes the `Injectable` (and `IntoService`) impls.

use proc_macro_crate::{FoundCrate, crate_name};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, Path};

use crate::attributes::{FieldSource, TypeAttributes};

pub(crate) fn injectable(input: &DeriveInput) -> syn::Result<TokenStream> {
    let attributes = TypeAttributes::parse(&input.attrs)?;
    let krate = attributes.krate.clone().unwrap_or_else(host_di_path);
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new_spanned(
            &input.ident,
            "`Injectable` can be derived for structs only",
        ));
    };

    let mut dependencies = Vec::new();
    let mut values = Vec::new();
    for field in &data.fields {
        let ty = &field.ty;
        let span = ty.span();
        match FieldSource::parse(&field.attrs)? {
            FieldSource::Resolve => {
                dependencies.push(quote_spanned! {span=>
                    dependencies.extend(<#ty as #krate::Resolvable>::dependency());
                });
                values.push(quote_spanned! {span=>
                    <#ty as #krate::Resolvable>::resolve(provider)?
                });
            }
            FieldSource::Keyed(key) => {
                dependencies.push(quote_spanned! {span=>
                    dependencies.push(<#ty as #krate::ResolvableKeyed>::dependency(#key));
                });
                values.push(quote_spanned! {span=>
                    <#ty as #krate::ResolvableKeyed>::resolve_keyed(provider, #key)?
                });
            }
            FieldSource::Default => {
                values.push(quote_spanned! {span=> ::core::default::Default::default() });
            }
        }
    }

    let construct = match &data.fields {
        Fields::Named(fields) => {
            let names = fields.named.iter().map(|field| &field.ident);
            quote! { Self { #(#names: #values),* } }
        }
        Fields::Unnamed(_) => quote! { Self(#(#values),*) },
        Fields::Unit => quote! { Self },
    };

    let disposer = if attributes.dispose {
        Some(quote! {
            fn disposer(this: &::std::sync::Arc<Self>) -> ::core::option::Option<#krate::Disposer> {
                ::core::option::Option::Some(#krate::Disposer::sync(::std::sync::Arc::clone(this)))
            }
        })
    } else if attributes.async_dispose {
        Some(quote! {
            fn disposer(this: &::std::sync::Arc<Self>) -> ::core::option::Option<#krate::Disposer> {
                ::core::option::Option::Some(#krate::Disposer::asynchronous(::std::sync::Arc::clone(this)))
            }
        })
    } else {
        None
    };

    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let services = attributes.services.iter().map(|service| {
        quote_spanned! {service.span()=>
            impl #impl_generics #krate::IntoService<#service> for #name #ty_generics #where_clause {
                fn into_service(self: ::std::sync::Arc<Self>) -> ::std::sync::Arc<#service> {
                    self
                }
            }
        }
    });
    let provider = Ident::new("provider", Span::call_site());

    Ok(quote! {
        impl #impl_generics #krate::Injectable for #name #ty_generics #where_clause {
            fn dependencies() -> ::std::vec::Vec<#krate::Dependency> {
                #[allow(unused_mut)]
                let mut dependencies = ::std::vec::Vec::new();
                #(#dependencies)*
                dependencies
            }

            fn create(
                #[allow(unused_variables)] #provider: &#krate::ServiceProvider,
            ) -> ::core::result::Result<Self, #krate::DiError> {
                ::core::result::Result::Ok(#construct)
            }

            #disposer
        }

        #(#services)*
    })
}

/// `::host_di`, or wherever the user's `Cargo.toml` makes it reachable.
fn host_di_path() -> Path {
    match crate_name("host-di") {
        Ok(FoundCrate::Name(name)) => ident_path(&name, None),
        Ok(FoundCrate::Itself) => ident_path("host_di", None),
        Err(_) => match crate_name("host") {
            Ok(FoundCrate::Name(name)) => ident_path(&name, Some("di")),
            _ => ident_path("host_di", None),
        },
    }
}

fn ident_path(krate: &str, module: Option<&str>) -> Path {
    let krate = Ident::new(krate, Span::call_site());
    match module.map(|module| Ident::new(module, Span::call_site())) {
        Some(module) => syn::parse_quote!(::#krate::#module),
        None => syn::parse_quote!(::#krate),
    }
}
