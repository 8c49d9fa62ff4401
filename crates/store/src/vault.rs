//! The vault: encryption of secrets at rest.
//!
//! Secrets are sealed with XChaCha20-Poly1305 under a fresh random 192-bit nonce per write; the
//! associated data binds each ciphertext to the row it belongs to and the key version, so a
//! ciphertext copied to another row or relabelled with another version fails to open.
//!
//! Keys live outside the database: in `LEDGERFLOW_ENCRYPTION_KEY` (base64 of 32 bytes, or
//! `1:<base64>,2:<base64>` for several versions) or in a key file (`<home>/encryption.keys`, mode
//! 0600, one `<version> <base64>` line per version) created on first run. Several versions coexist so
//! that rotation never makes a stored secret unreadable. This module never logs key material.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

const NONCE_LEN: usize = 24;
pub const KEY_FILE_NAME: &str = "encryption.keys";
pub const KEY_ENV: &str = "LEDGERFLOW_ENCRYPTION_KEY";

/// Where the keys came from, so errors can say what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Env,
    File(PathBuf),
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => write!(f, "{KEY_ENV}"),
            KeySource::File(p) => write!(f, "key file {}", p.display()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("{source_name} is not valid: {problem} (expected base64 of 32 bytes, or `1:<base64>,2:<base64>` for several key versions)")]
    BadKey {
        source_name: String,
        problem: String,
    },
    #[error("cannot read or create the key file {path}: {err}")]
    KeyFile { path: PathBuf, err: std::io::Error },
    #[error("no encryption key of version {version} is loaded (keys come from {source_name}); add that key version back")]
    MissingVersion { version: u32, source_name: String },
    #[error("a secret could not be decrypted with encryption key version {version}: the key is wrong or the stored data was tampered with")]
    Decrypt { version: u32 },
}

#[derive(Clone)]
struct Key(Arc<XChaCha20Poly1305>);

/// The set of key versions in use. Cheap to clone; clones share state so a reload is seen by all.
#[derive(Clone)]
pub struct Keyring {
    inner: Arc<RwLock<BTreeMap<u32, Key>>>,
    source: KeySource,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("versions", &self.versions())
            .field("source", &self.source)
            .finish()
    }
}

fn parse_key(text: &str, source: &KeySource) -> Result<Key, VaultError> {
    let bytes = B64.decode(text.trim()).map_err(|e| VaultError::BadKey {
        source_name: source.to_string(),
        problem: format!("not base64 ({e})"),
    })?;
    if bytes.len() != 32 {
        return Err(VaultError::BadKey {
            source_name: source.to_string(),
            problem: format!("decodes to {} bytes, not 32", bytes.len()),
        });
    }
    Ok(Key(Arc::new(
        XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| VaultError::BadKey {
            source_name: source.to_string(),
            problem: "unusable key".into(),
        })?,
    )))
}

/// Parses `base64` (version 1) or `v:base64` entries separated by commas, spaces or newlines.
fn parse_versions(text: &str, source: &KeySource) -> Result<BTreeMap<u32, Key>, VaultError> {
    let mut keys = BTreeMap::new();
    for (i, entry) in text
        .split([',', '\n'])
        .map(str::trim)
        .filter(|e| !e.is_empty() && !e.starts_with('#'))
        .enumerate()
    {
        let (version, key) = match entry.split_once([':', ' ']) {
            Some((v, k)) => {
                let v = v.trim().trim_start_matches('v');
                let v: u32 = v.parse().map_err(|_| VaultError::BadKey {
                    source_name: source.to_string(),
                    problem: format!("key version '{v}' is not a number"),
                })?;
                (v, k)
            }
            None if i == 0 => (1, entry),
            None => {
                return Err(VaultError::BadKey {
                    source_name: source.to_string(),
                    problem: "several keys must each name their version".into(),
                })
            }
        };
        if version == 0 || keys.insert(version, parse_key(key, source)?).is_some() {
            return Err(VaultError::BadKey {
                source_name: source.to_string(),
                problem: format!("key version {version} is zero or given twice"),
            });
        }
    }
    if keys.is_empty() {
        return Err(VaultError::BadKey {
            source_name: source.to_string(),
            problem: "it is empty".into(),
        });
    }
    Ok(keys)
}

/// A new random key, base64-encoded.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    B64.encode(bytes)
}

fn write_new_file_0600(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()
}

impl Keyring {
    /// Keys from `env_value` if given, else from the key file in `home`, created on first run.
    pub fn load(home: &Path, env_value: Option<&str>) -> Result<Keyring, VaultError> {
        if let Some(v) = env_value.filter(|v| !v.trim().is_empty()) {
            let keys = parse_versions(v, &KeySource::Env)?;
            return Ok(Keyring {
                inner: Arc::new(RwLock::new(keys)),
                source: KeySource::Env,
            });
        }
        let path = home.join(KEY_FILE_NAME);
        let io_err = |err| VaultError::KeyFile {
            path: path.clone(),
            err,
        };
        if !path.exists() {
            std::fs::create_dir_all(home).map_err(io_err)?;
            let line = format!("1 {}\n", generate_key());
            match write_new_file_0600(&path, &line) {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "created a new encryption key file")
                }
                // Another process created it first: use theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io_err(e)),
            }
        }
        let ring = Keyring {
            inner: Arc::new(RwLock::new(BTreeMap::new())),
            source: KeySource::File(path),
        };
        ring.reload()?;
        Ok(ring)
    }

    /// Keys given directly (tests, tools).
    pub fn from_env_value(value: &str) -> Result<Keyring, VaultError> {
        Ok(Keyring {
            inner: Arc::new(RwLock::new(parse_versions(value, &KeySource::Env)?)),
            source: KeySource::Env,
        })
    }

    /// Re-reads the key file, so a version added by `keys rotate` in another process is picked up.
    pub fn reload(&self) -> Result<(), VaultError> {
        let KeySource::File(path) = &self.source else {
            return Ok(());
        };
        let text = std::fs::read_to_string(path).map_err(|err| VaultError::KeyFile {
            path: path.clone(),
            err,
        })?;
        let keys = parse_versions(&text, &self.source)?;
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = keys;
        Ok(())
    }

    pub fn source(&self) -> &KeySource {
        &self.source
    }

    pub fn versions(&self) -> Vec<u32> {
        self.read().keys().copied().collect()
    }

    /// The version new writes use: the highest loaded.
    pub fn current_version(&self) -> u32 {
        self.read().keys().next_back().copied().unwrap_or(1)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<u32, Key>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn key(&self, version: u32) -> Result<Key, VaultError> {
        if let Some(k) = self.read().get(&version) {
            return Ok(k.clone());
        }
        // A rotation in another process may have added it since we loaded.
        self.reload()?;
        self.read()
            .get(&version)
            .cloned()
            .ok_or_else(|| VaultError::MissingVersion {
                version,
                source_name: self.source.to_string(),
            })
    }

    /// Appends a new key version to the key file (durably) and returns its number.
    /// Keys from the environment cannot be extended here: the caller says how to do it by hand.
    pub fn add_version(&self) -> Result<u32, VaultError> {
        let KeySource::File(path) = &self.source else {
            return Err(VaultError::BadKey {
                source_name: KEY_ENV.into(),
                problem: "keys from the environment are not changed by Ledgerflow; add the new key as the next version (`1:<old>,2:<new>`) on every server, then run `ledgerflow keys rotate` to re-encrypt".into(),
            });
        };
        self.reload()?;
        let version = self.current_version() + 1;
        let io_err = |err| VaultError::KeyFile {
            path: path.clone(),
            err,
        };
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io_err)?;
        f.write_all(format!("{version} {}\n", generate_key()).as_bytes())
            .map_err(io_err)?;
        f.sync_all().map_err(io_err)?;
        self.reload()?;
        Ok(version)
    }

    /// Encrypts `plaintext` for the row named by `aad_label` with the current key.
    pub fn seal(&self, aad_label: &str, plaintext: &[u8]) -> Result<(Vec<u8>, u32), VaultError> {
        let version = self.current_version();
        Ok((self.seal_with(version, aad_label, plaintext)?, version))
    }

    pub fn seal_with(
        &self,
        version: u32,
        aad_label: &str,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let key = self.key(version)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = associated_data(aad_label, version);
        let ct = key
            .0
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| VaultError::Decrypt { version })?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Decrypts what `seal` produced for the same row label and version.
    pub fn open(
        &self,
        aad_label: &str,
        version: u32,
        sealed: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let key = self.key(version)?;
        if sealed.len() < NONCE_LEN {
            return Err(VaultError::Decrypt { version });
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        let aad = associated_data(aad_label, version);
        key.0
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| VaultError::Decrypt { version })
    }
}

fn associated_data(label: &str, version: u32) -> Vec<u8> {
    format!("ledgerflow/v1|{label}|key{version}").into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secret_opens_only_for_its_row_and_version() {
        let ring =
            Keyring::from_env_value(&format!("1:{},2:{}", generate_key(), generate_key())).unwrap();
        assert_eq!(ring.current_version(), 2);
        let (ct, v) = ring.seal("credential:a", b"hunter2").unwrap();
        assert_eq!(ring.open("credential:a", v, &ct).unwrap(), b"hunter2");
        assert!(ring.open("credential:b", v, &ct).is_err());
        assert!(ring.open("credential:a", 1, &ct).is_err());
        // Fresh nonce per write.
        let (ct2, _) = ring.seal("credential:a", b"hunter2").unwrap();
        assert_ne!(ct, ct2);
    }

    #[test]
    fn bad_key_values_are_named() {
        let e = Keyring::from_env_value("not base64!")
            .unwrap_err()
            .to_string();
        assert!(e.contains(KEY_ENV), "{e}");
        let short = B64.encode([1u8; 16]);
        let e = Keyring::from_env_value(&short).unwrap_err().to_string();
        assert!(e.contains("16 bytes"), "{e}");
    }

    #[test]
    fn key_file_is_created_0600_and_grows_on_rotation() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::load(dir.path(), None).unwrap();
        let path = dir.path().join(KEY_FILE_NAME);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (ct, v) = ring.seal("x", b"data").unwrap();
        assert_eq!(ring.add_version().unwrap(), 2);
        let again = Keyring::load(dir.path(), None).unwrap();
        assert_eq!(again.versions(), vec![1, 2]);
        assert_eq!(again.open("x", v, &ct).unwrap(), b"data");
    }
}
