//! OAuth 2.0 for credentials: authorize URLs with `state` and PKCE, the code exchange, refresh,
//! revocation ([`flow`]), and the token manager that hands out access tokens ([`manager`]).
//!
//! This crate knows no SQL and no web framework: the manager reaches storage through the
//! [`manager::TokenStore`] trait, and callers give it a `reqwest::Client`. Tokens are
//! [`secrecy::SecretString`]s from the moment they are parsed.

pub mod flow;
pub mod manager;

pub use flow::{
    authorize_url, exchange_code, new_pkce, new_state, refresh, revoke, ClientAuth, OAuthError,
    Pkce, Provider, TokenResponse,
};
pub use manager::{AccessToken, ClientConfig, StoredTokens, TokenError, TokenManager, TokenStore};
