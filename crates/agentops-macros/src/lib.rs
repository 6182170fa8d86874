//! Attribute macros of the AgentOps SDK, re-exported as `#[agentops::action]`,
//! `#[agentops::tool]` and `#[agentops::llm]`: see the `agentops` crate's documentation.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::Parser as _;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned as _;
use syn::{Expr, ExprLit, FnArg, ItemFn, Lit, Meta, Pat, ReturnType, Token, Type};

/// Records each call of the function as an action event: its arguments as params, what it
/// returns, how long it took, and an `Err` as an error event linked to it.
#[proc_macro_attribute]
pub fn action(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Action, args.into(), item.into()).into()
}

/// Records each call of the function as a tool event (see [`macro@action`]).
#[proc_macro_attribute]
pub fn tool(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Tool, args.into(), item.into()).into()
}

/// Records each call of the function as an LLM event: its arguments as the prompt, what it
/// returns as the completion (see [`macro@action`]).
#[proc_macro_attribute]
pub fn llm(args: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Llm, args.into(), item.into()).into()
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Action,
    Tool,
    Llm,
}

impl Kind {
    fn attribute(self) -> &'static str {
        match self {
            Kind::Action => "#[agentops::action]",
            Kind::Tool => "#[agentops::tool]",
            Kind::Llm => "#[agentops::llm]",
        }
    }
}

/// What the attribute's arguments say.
#[derive(Default)]
struct Options {
    name: Option<String>,
    model: Option<String>,
    skip: Vec<syn::Ident>,
    redact: Vec<syn::Ident>,
    skip_return: bool,
}

const OPTIONS: &str = "name = \"…\", skip(args…), redact(args…), skip_return, and for \
                       #[agentops::llm] model = \"…\"";

fn parse_options(kind: Kind, args: TokenStream2) -> syn::Result<Options> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut options = Options::default();
    for meta in metas {
        let key = meta
            .path()
            .get_ident()
            .map(ToString::to_string)
            .unwrap_or_default();
        match (key.as_str(), &meta) {
            ("name", Meta::NameValue(value)) => options.name = Some(string(&value.value)?),
            ("model", Meta::NameValue(value)) if kind == Kind::Llm => {
                options.model = Some(string(&value.value)?)
            }
            ("model", _) if kind != Kind::Llm => {
                return Err(syn::Error::new(
                    meta.span(),
                    format!(
                        "`model` is only for #[agentops::llm], not {}",
                        kind.attribute()
                    ),
                ))
            }
            ("skip", Meta::List(list)) => options.skip.extend(idents(list)?),
            ("redact", Meta::List(list)) => options.redact.extend(idents(list)?),
            ("skip_return", Meta::Path(_)) => options.skip_return = true,
            _ => {
                return Err(syn::Error::new(
                    meta.span(),
                    format!(
                        "unknown or malformed option of {}: expected {OPTIONS}",
                        kind.attribute()
                    ),
                ))
            }
        }
    }
    Ok(options)
}

fn string(expr: &Expr) -> syn::Result<String> {
    match expr {
        Expr::Lit(ExprLit {
            lit: Lit::Str(text),
            ..
        }) => Ok(text.value()),
        other => Err(syn::Error::new(other.span(), "expected a string literal")),
    }
}

fn idents(list: &syn::MetaList) -> syn::Result<Vec<syn::Ident>> {
    Ok(list
        .parse_args_with(Punctuated::<syn::Ident, Token![,]>::parse_terminated)?
        .into_iter()
        .collect())
}

fn expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> TokenStream2 {
    match try_expand(kind, args, item) {
        Ok(tokens) => tokens,
        Err(err) => err.to_compile_error(),
    }
}

/// The arguments that are recorded: plain identifiers, not skipped.
fn arguments(function: &ItemFn) -> Vec<syn::Ident> {
    function
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Typed(typed) => match &*typed.pat {
                Pat::Ident(ident) => Some(ident.ident.clone()),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

/// Whether the function returns a `Result` (by the last segment of its return type's path).
fn returns_result(function: &ItemFn) -> bool {
    match &function.sig.output {
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(path) => path
                .path
                .segments
                .last()
                .is_some_and(|segment| segment.ident == "Result"),
            _ => false,
        },
        ReturnType::Default => false,
    }
}

fn try_expand(kind: Kind, args: TokenStream2, item: TokenStream2) -> syn::Result<TokenStream2> {
    let options = parse_options(kind, args)?;
    let mut function: ItemFn = syn::parse2(item).map_err(|err| {
        syn::Error::new(
            err.span(),
            format!("{} goes on a function or method", kind.attribute()),
        )
    })?;
    if let Some(constness) = &function.sig.constness {
        return Err(syn::Error::new(
            constness.span(),
            format!("{} cannot record a `const fn`", kind.attribute()),
        ));
    }
    let recorded = arguments(&function);
    for ident in options.skip.iter().chain(&options.redact) {
        if !recorded.contains(ident) {
            return Err(syn::Error::new(
                ident.span(),
                format!("no argument named `{ident}` to skip or redact"),
            ));
        }
    }
    let name = options
        .name
        .clone()
        .unwrap_or_else(|| function.sig.ident.to_string());
    let model = match &options.model {
        Some(model) => quote!(::core::option::Option::Some(#model)),
        None => quote!(::core::option::Option::None),
    };
    let kind_tokens = match kind {
        Kind::Action => quote!(::agentops::__private::CallKind::Action),
        Kind::Tool => quote!(::agentops::__private::CallKind::Tool),
        Kind::Llm => quote!(::agentops::__private::CallKind::Llm),
    };
    let params = recorded
        .iter()
        .filter(|ident| !options.skip.contains(ident))
        .map(|ident| {
            let key = ident.to_string();
            if options.redact.contains(ident) {
                quote!((#key, ::agentops::__private::redacted()))
            } else {
                quote!((#key, (&&&::agentops::__private::Probe(&#ident)).agentops_json()))
            }
        });
    let finish = if returns_result(&function) {
        let ok = if options.skip_return {
            quote!(__agentops_call.returned(::core::option::Option::None))
        } else {
            quote!(__agentops_call.returned(::core::option::Option::Some(
                (&&&::agentops::__private::Probe(__agentops_value)).agentops_json()
            )))
        };
        quote! {
            match &__agentops_result {
                ::core::result::Result::Ok(__agentops_value) => #ok,
                ::core::result::Result::Err(__agentops_error) => __agentops_call.failed(
                    ::agentops::__private::type_name_of(__agentops_error),
                    (&&&::agentops::__private::Probe(__agentops_error)).agentops_text(),
                ),
            }
        }
    } else if options.skip_return {
        quote!(__agentops_call.returned(::core::option::Option::None))
    } else {
        quote!(__agentops_call.returned(::core::option::Option::Some(
            (&&&::agentops::__private::Probe(&__agentops_result)).agentops_json()
        )))
    };
    let block = &function.block;
    let is_async = function.sig.asyncness.is_some();
    // The result's type, written out where it can be (not for `impl Trait`), so that a `?` in
    // the body converts its error as in the unrecorded function.
    let annotation = match &function.sig.output {
        ReturnType::Default => quote!(: ()),
        ReturnType::Type(_, ty) if !quote!(#ty).to_string().contains("impl ") => quote!(: #ty),
        ReturnType::Type(..) => quote!(),
    };
    let span = Span::call_site();
    let call = quote_spanned! {span=>
        #[allow(unused_imports)]
        use ::agentops::__private::{JsonViaDebug as _, JsonViaNothing as _, JsonViaSerialize as _,
            TextViaDebug as _, TextViaDisplay as _, TextViaNothing as _};
        let __agentops_call = ::agentops::__private::Call::start(#kind_tokens, #name, #model, || {
            ::agentops::__private::params(&[#(#params),*])
        });
    };
    let body = if is_async {
        quote! {
            #call
            let __agentops_result #annotation = __agentops_call.scope(async move #block).await;
            #finish;
            __agentops_result
        }
    } else {
        quote! {
            #call
            let __agentops_result #annotation = {
                let _agentops_current = __agentops_call.enter();
                #[allow(clippy::redundant_closure_call)]
                (move || #block)()
            };
            #finish;
            __agentops_result
        }
    };
    function.block = syn::parse2(quote!({ #body }))?;
    Ok(quote!(#function))
}
