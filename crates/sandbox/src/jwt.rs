//! Signing and verifying the sandbox's JSON Web Tokens (EdDSA over Ed25519).
//!
//! Owns the one signing key of a running sandbox, its JWKS entry and the compact JWT encoding.
//! It knows nothing about which claims a token carries: identity decides that. Ed25519 keeps key
//! generation instant even in unoptimised builds, unlike RSA.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::SandboxError;

/// The key pair that signs access and id tokens.
pub struct TokenSigner {
    key: Ed25519KeyPair,
    kid: String,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("kid", &self.kid)
            .finish()
    }
}

impl TokenSigner {
    /// Generates a fresh key; the key id is derived from the public key.
    pub fn generate() -> Result<Self, SandboxError> {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| {
            SandboxError::Crypto("could not generate an Ed25519 signing key".into())
        })?;
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
            .map_err(|e| SandboxError::Crypto(format!("generated Ed25519 key rejected: {e}")))?;
        let digest = Sha256::digest(key.public_key().as_ref());
        let kid = digest[..8].iter().map(|b| format!("{b:02X}")).collect();
        Ok(Self { key, kid })
    }

    /// Encodes and signs `claims` as a compact JWT.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": "EdDSA", "kid": self.kid, "typ": "JWT"});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self.key.sign(signing_input.as_bytes());
        format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature.as_ref())
        )
    }

    /// Returns the claims of a token this signer issued, or `None` when the token is malformed
    /// or its signature does not verify. Expiry is the caller's business.
    pub fn verify(&self, token: &str) -> Option<Value> {
        let mut parts = token.split('.');
        let (header, payload, signature) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let signature = URL_SAFE_NO_PAD.decode(signature).ok()?;
        let public = UnparsedPublicKey::new(&ED25519, self.key.public_key().as_ref());
        public
            .verify(format!("{header}.{payload}").as_bytes(), &signature)
            .ok()?;
        let claims = URL_SAFE_NO_PAD.decode(payload).ok()?;
        serde_json::from_slice(&claims).ok()
    }

    /// The JSON Web Key Set published at `/.well-known/openid-configuration/jwks`.
    pub fn jwks(&self) -> Value {
        json!({"keys": [{
            "kty": "OKP",
            "crv": "Ed25519",
            "use": "sig",
            "alg": "EdDSA",
            "kid": self.kid,
            "x": URL_SAFE_NO_PAD.encode(self.key.public_key().as_ref()),
        }]})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_token_verifies_and_a_tampered_one_does_not() {
        let signer = TokenSigner::generate().expect("key");
        let token = signer.sign(&json!({"sub": "abc", "exp": 1}));
        assert_eq!(signer.verify(&token).expect("claims")["sub"], "abc");
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(json!({"sub": "evil", "exp": 1}).to_string());
        parts[1] = &forged;
        assert!(signer.verify(&parts.join(".")).is_none());
        assert!(signer.verify("not-a-jwt").is_none());
    }
}
