//! ES256 (P-256) signing keys and the on-disk key directory.
//!
//! Layout of a key directory:
//! - `<kid>.pem`: the private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`), mode 0600;
//! - `current`: the kid used for signing when none is given (one line).
//!
//! A kid is a UUID v4 (as the ALB's are). The public key is derived from the
//! private key when it is served, so there is a single file per key. Keys
//! themselves ([`KeyPair`]) come from the test kit, as minting does.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use alb_oidc_testkit::keys::KeyPair;
use p256::ecdsa::SigningKey;
use p256::pkcs8::DecodePrivateKey;

use crate::error::{Error, Result};

/// Name of the file that holds the current signing kid.
pub const CURRENT_FILE: &str = "current";

/// Longest kid accepted anywhere (same bound as the filter and the Python original).
pub const MAX_KID_LEN: usize = 64;

/// `^[A-Za-z0-9_-]{1,64}$`: the only kids that are stored, served or signed with.
pub fn is_valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= MAX_KID_LEN
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A directory of keys (see the module documentation for the layout).
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
}

impl KeyDir {
    /// A key directory at `dir` (it need not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        KeyDir { dir: dir.into() }
    }

    /// The directory path.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn key_path(&self, kid: &str) -> PathBuf {
        self.dir.join(format!("{kid}.pem"))
    }

    /// All kids in the directory, sorted. A missing directory has no keys.
    pub fn list(&self) -> Result<Vec<String>> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io_path("reading key directory", &self.dir, e)),
        };
        let mut kids = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io_path("reading key directory", &self.dir, e))?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(kid) = name.strip_suffix(".pem") {
                if is_valid_kid(kid) {
                    kids.push(kid.to_owned());
                }
            }
        }
        kids.sort();
        Ok(kids)
    }

    /// The current signing kid: the `current` file if it names an existing key,
    /// else the most recently modified key, else `None`.
    pub fn current(&self) -> Result<Option<String>> {
        let current_path = self.dir.join(CURRENT_FILE);
        match fs::read_to_string(&current_path) {
            Ok(text) => {
                let kid = text.trim();
                if is_valid_kid(kid) && self.key_path(kid).is_file() {
                    return Ok(Some(kid.to_owned()));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io_path("reading", &current_path, e)),
        }
        let mut newest: Option<(std::time::SystemTime, String)> = None;
        for kid in self.list()? {
            let path = self.key_path(&kid);
            let modified = fs::metadata(&path)
                .and_then(|m| m.modified())
                .map_err(|e| Error::io_path("reading", &path, e))?;
            if newest.as_ref().is_none_or(|(t, _)| modified >= *t) {
                newest = Some((modified, kid));
            }
        }
        Ok(newest.map(|(_, kid)| kid))
    }

    /// Makes `kid` the current signing key.
    pub fn set_current(&self, kid: &str) -> Result<()> {
        if !is_valid_kid(kid) || !self.key_path(kid).is_file() {
            return Err(Error::Invalid(format!(
                "no key {kid:?} in {}",
                self.dir.display()
            )));
        }
        write_atomic(
            &self.dir.join(CURRENT_FILE),
            format!("{kid}\n").as_bytes(),
            false,
        )
    }

    /// Generates `count` new keys, stores them and makes the last one current.
    /// Returns the new kids in creation order.
    pub fn generate(&self, count: usize) -> Result<Vec<String>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        create_private_dir(&self.dir)?;
        let mut kids = Vec::with_capacity(count);
        for _ in 0..count {
            let pair = KeyPair::generate()?;
            let pem = pair.private_pem()?;
            write_atomic(&self.key_path(&pair.kid), pem.as_bytes(), true)?;
            kids.push(pair.kid);
        }
        if let Some(last) = kids.last() {
            self.set_current(last)?;
        }
        Ok(kids)
    }

    /// Generates one key if the directory holds none. Returns the new kid, if any.
    pub fn generate_if_missing(&self) -> Result<Option<String>> {
        if self.list()?.is_empty() {
            Ok(self.generate(1)?.pop())
        } else {
            Ok(None)
        }
    }

    /// Loads the key `kid`, or `Ok(None)` when the directory has no such key.
    /// Invalid kids are never turned into paths: they are simply not found.
    pub fn load(&self, kid: &str) -> Result<Option<KeyPair>> {
        if !is_valid_kid(kid) {
            return Ok(None);
        }
        let path = self.key_path(kid);
        let pem = match fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io_path("reading", &path, e)),
        };
        let key = SigningKey::from_pkcs8_pem(&pem)
            .map_err(|e| Error::Key(format!("parsing {}: {e}", path.display())))?;
        Ok(Some(KeyPair {
            kid: kid.to_owned(),
            key,
        }))
    }

    /// Loads `kid`, or the current key when `kid` is `None`; missing keys are errors.
    pub fn signing_key(&self, kid: Option<&str>) -> Result<KeyPair> {
        let kid = match kid {
            Some(kid) => kid.to_owned(),
            None => self.current()?.ok_or_else(|| {
                Error::Invalid(format!(
                    "no keys in {} (run `alb-sim keys generate --dir {}`)",
                    self.dir.display(),
                    self.dir.display()
                ))
            })?,
        };
        self.load(&kid)?
            .ok_or_else(|| Error::Invalid(format!("no key {kid:?} in {}", self.dir.display())))
    }

    /// The public PEM of `kid`, or `Ok(None)` when unknown (or not a valid kid).
    pub fn public_pem(&self, kid: &str) -> Result<Option<String>> {
        match self.load(kid)? {
            Some(pair) => Ok(Some(pair.public_pem()?)),
            None => Ok(None),
        }
    }
}

pub(crate) fn create_private_dir(dir: &Path) -> Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| Error::io_path("creating key directory", dir, e))
}

/// Writes through a temporary file and a rename so readers never see a partial file.
pub(crate) fn write_atomic(path: &Path, content: &[u8], private: bool) -> Result<()> {
    let file_name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Error::Invalid(format!("bad path {}", path.display())))?;
    let tmp = path.with_file_name(format!(".{file_name}.{}.tmp", std::process::id()));
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options
        .open(&tmp)
        .map_err(|e| Error::io_path("creating", &tmp, e))?;
    file.write_all(content)
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io_path("writing", &tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| Error::io_path("renaming into", path, e))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use alb_oidc_testkit::keys::verifying_key_from_pem;

    #[test]
    fn kid_validation() {
        assert!(is_valid_kid("abb8289f-e3a4-4a34-9472-c2105e2b2482"));
        assert!(is_valid_kid("a_B-9"));
        for bad in [
            "",
            "a/b",
            "..",
            "a.b",
            "a%2f",
            "a?b",
            "a b",
            "é",
            &"a".repeat(65),
        ] {
            assert!(!is_valid_kid(bad), "{bad:?}");
        }
        assert!(is_valid_kid(&"a".repeat(64)));
    }

    #[test]
    fn generate_list_current_load() {
        let dir = std::env::temp_dir().join(format!("alb-sim-keys-{}", uuid::Uuid::new_v4()));
        let keys = KeyDir::new(&dir);
        assert!(keys.list().unwrap().is_empty());
        assert_eq!(keys.current().unwrap(), None);
        let first = keys.generate_if_missing().unwrap().unwrap();
        assert_eq!(keys.generate_if_missing().unwrap(), None);
        let more = keys.generate(2).unwrap();
        assert_eq!(more.len(), 2);
        let mut all = keys.list().unwrap();
        assert_eq!(all.len(), 3);
        all.retain(|k| k != &first && !more.contains(k));
        assert!(all.is_empty());
        assert_eq!(keys.current().unwrap().as_deref(), Some(more[1].as_str()));
        keys.set_current(&first).unwrap();
        assert_eq!(keys.current().unwrap().as_deref(), Some(first.as_str()));
        assert!(keys.set_current("../x").is_err());
        let pair = keys.signing_key(None).unwrap();
        assert_eq!(pair.kid, first);
        assert!(uuid::Uuid::parse_str(&pair.kid).is_ok());
        let pem = keys.public_pem(&first).unwrap().unwrap();
        assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert_eq!(
            verifying_key_from_pem(&pem).unwrap(),
            *pair.key.verifying_key()
        );
        assert_eq!(keys.public_pem("nope").unwrap(), None);
        assert_eq!(keys.public_pem("../current").unwrap(), None);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(format!("{first}.pem")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(&dir).unwrap();
    }
}
