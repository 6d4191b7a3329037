//! The stand-in's IdP (issue 13): RSA keys in a directory of their own, the
//! key set (JWKS) the filter fetches, and Cognito-style access tokens, which
//! the proxy forwards in `x-amzn-oidc-accesstoken` as the ALB does.
//!
//! The directory has the ALB key directory's layout (`<kid>.pem`, PKCS#8,
//! mode 0600, and `current`), so listing, choosing and rotating keys work
//! the same way; the keys are RSA, as Cognito's, and the key set holds every
//! key in the directory: a new key becomes current and the old one stays
//! served until it is removed, which is how an IdP rotates.
//!
//! Signing and JWK rendering are the test kit's (`alb_oidc_testkit::idp`).

use std::fs;

use alb_oidc_testkit::idp::{self, IdpKey};
use alb_oidc_testkit::token::{now_unix, Claims};
use serde_json::{json, Map, Value};

use crate::error::{Error, Result};
use crate::keys::{self, is_valid_kid, KeyDir};

/// Where the key endpoint serves the key set unless told otherwise.
pub const DEFAULT_JWKS_PATH: &str = "/idp/jwks.json";
/// Cognito's access tokens live an hour.
pub const DEFAULT_ACCESS_TOKEN_EXP_IN: i64 = 3600;
/// The only algorithm the stand-in signs with (Cognito's).
pub const ALG: &str = "RS256";

/// A directory of IdP signing keys.
#[derive(Debug, Clone)]
pub struct IdpKeyDir {
    files: KeyDir,
}

impl IdpKeyDir {
    /// The IdP key directory at `dir` (it need not exist yet).
    pub fn new(dir: impl Into<std::path::PathBuf>) -> Self {
        IdpKeyDir {
            files: KeyDir::new(dir),
        }
    }

    /// The directory path.
    pub fn path(&self) -> &std::path::Path {
        self.files.path()
    }

    /// All kids, sorted.
    pub fn list(&self) -> Result<Vec<String>> {
        self.files.list()
    }

    /// The kid tokens are signed with (see [`KeyDir::current`]).
    pub fn current(&self) -> Result<Option<String>> {
        self.files.current()
    }

    /// Makes `kid` the signing key.
    pub fn set_current(&self, kid: &str) -> Result<()> {
        self.files.set_current(kid)
    }

    /// Generates `count` RSA keys with UUID kids; the last becomes current.
    pub fn generate(&self, count: usize) -> Result<Vec<String>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut kids = Vec::with_capacity(count);
        for _ in 0..count {
            let key = IdpKey::generate_rsa(uuid::Uuid::new_v4().to_string())?;
            self.add(&key)?;
            kids.push(key.kid);
        }
        Ok(kids)
    }

    /// Stores `key` (RSA) and makes it current.
    pub fn add(&self, key: &IdpKey) -> Result<()> {
        if !is_valid_kid(&key.kid) {
            return Err(Error::Invalid(format!("bad kid {:?}", key.kid)));
        }
        keys::create_private_dir(self.path())?;
        let pem = key.private_pem()?;
        keys::write_atomic(&self.key_path(&key.kid), pem.as_bytes(), true)?;
        self.set_current(&key.kid)
    }

    /// Generates one key if there is none; returns its kid.
    pub fn generate_if_missing(&self) -> Result<Option<String>> {
        if self.list()?.is_empty() {
            Ok(self.generate(1)?.pop())
        } else {
            Ok(None)
        }
    }

    /// Removes `kid` from the key set (the end of a rotation). The current
    /// key cannot be removed: tokens would name a key nobody serves.
    pub fn remove(&self, kid: &str) -> Result<()> {
        if !is_valid_kid(kid) || !self.key_path(kid).is_file() {
            return Err(Error::Invalid(format!(
                "no key {kid:?} in {}",
                self.path().display()
            )));
        }
        if self.current()?.as_deref() == Some(kid) {
            return Err(Error::Invalid(format!(
                "{kid} is the current key: make another current first"
            )));
        }
        let path = self.key_path(kid);
        fs::remove_file(&path).map_err(|e| Error::io_path("removing", &path, e))
    }

    fn key_path(&self, kid: &str) -> std::path::PathBuf {
        self.path().join(format!("{kid}.pem"))
    }

    /// The key `kid`, or `None` when the directory has none by that kid.
    pub fn load(&self, kid: &str) -> Result<Option<IdpKey>> {
        if !is_valid_kid(kid) {
            return Ok(None);
        }
        let path = self.key_path(kid);
        let pem = match fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io_path("reading", &path, e)),
        };
        IdpKey::rsa_from_pem(&pem, kid)
            .map(Some)
            .map_err(|e| Error::Key(format!("{}: {e}", path.display())))
    }

    /// The current signing key.
    pub fn signing_key(&self) -> Result<IdpKey> {
        let kid = self.current()?.ok_or_else(|| {
            Error::Invalid(format!(
                "no IdP keys in {} (run `alb-sim idp-keys generate --dir {}`)",
                self.path().display(),
                self.path().display()
            ))
        })?;
        self.load(&kid)?
            .ok_or_else(|| Error::Invalid(format!("no key {kid:?} in {}", self.path().display())))
    }

    /// The key set document: every key's public JWK, `alg` RS256, in kid order.
    pub fn jwks(&self) -> Result<String> {
        let mut jwks = Vec::new();
        for kid in self.list()? {
            if let Some(key) = self.load(&kid)? {
                let mut jwk = key.jwk();
                if let Some(members) = jwk.as_object_mut() {
                    members.insert("alg".into(), Value::from(ALG));
                }
                jwks.push(jwk);
            }
        }
        Ok(idp::jwks(&jwks))
    }
}

/// What an access token says besides the identity's own access claims.
#[derive(Debug, Clone)]
pub struct AccessTokenFields {
    /// `iss`: the IdP (the same issuer as the data token's).
    pub issuer: String,
    /// `client_id`: the app client the ALB logged in with.
    pub client_id: String,
    /// Lifetime in seconds.
    pub exp_in: i64,
}

/// A Cognito-style access token for the user whose data token says `sub`
/// (and `username`, if any): `sub`, `token_use: access`, `iss`,
/// `client_id`, `iat`, `auth_time`, `exp`, `jti`, `username`, then the
/// identity's access claims (`cognito:groups`, `scope`, ...), which may
/// replace any of them. Header `{"kid":..,"alg":"RS256"}`. Returns the
/// token and its `exp`.
pub fn mint_access_token(
    key: &IdpKey,
    data_claims: &Claims,
    access_claims: &Claims,
    fields: &AccessTokenFields,
) -> Result<(String, i64)> {
    let now = now_unix();
    let exp = now.saturating_add(fields.exp_in);
    let mut payload = Map::new();
    if let Some(sub) = data_claims.get("sub") {
        payload.insert("sub".into(), sub.clone());
    }
    payload.insert("token_use".into(), Value::from("access"));
    payload.insert("iss".into(), Value::from(fields.issuer.clone()));
    payload.insert("client_id".into(), Value::from(fields.client_id.clone()));
    payload.insert("iat".into(), Value::from(now));
    payload.insert("auth_time".into(), Value::from(now));
    payload.insert("exp".into(), Value::from(exp));
    payload.insert("jti".into(), Value::from(uuid::Uuid::new_v4().to_string()));
    if let Some(username) = data_claims.get("username") {
        payload.insert("username".into(), username.clone());
    }
    for (name, value) in access_claims.iter() {
        payload.insert(name.to_owned(), value.clone());
    }
    let header = json!({"kid": key.kid, "alg": ALG});
    let token = idp::access_token(&header, &Value::Object(payload), key)?;
    Ok((token, exp))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use alb_oidc_testkit::idp::RsaFixture;
    use base64::Engine as _;

    #[test]
    fn access_tokens_carry_the_login_and_the_identity_claims() {
        let key = IdpKey::rsa(RsaFixture::A, "kid-1").unwrap();
        let data = Claims::from_json(r#"{"sub":"u-1","username":"alice"}"#).unwrap();
        let access =
            Claims::from_json(r#"{"cognito:groups":["admin"],"scope":"openid orders:read"}"#)
                .unwrap();
        let fields = AccessTokenFields {
            issuer: "https://idp.test".into(),
            client_id: "c-1".into(),
            exp_in: 3600,
        };
        let (token, exp) = mint_access_token(&key, &data, &access, &fields).unwrap();
        let segments: Vec<&str> = token.split('.').collect();
        assert_eq!(segments.len(), 3);
        let decode = |s: &str| {
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };
        assert_eq!(decode(segments[0]), json!({"kid": "kid-1", "alg": "RS256"}));
        let payload = decode(segments[1]);
        assert_eq!(payload["sub"], "u-1");
        assert_eq!(payload["username"], "alice");
        assert_eq!(payload["token_use"], "access");
        assert_eq!(payload["iss"], "https://idp.test");
        assert_eq!(payload["client_id"], "c-1");
        assert_eq!(payload["cognito:groups"], json!(["admin"]));
        assert_eq!(payload["scope"], "openid orders:read");
        assert_eq!(payload["exp"], exp);
        let signed = token.rsplit_once('.').unwrap().0;
        assert_eq!(
            segments[2],
            idp::b64(&key.sign("RS256", signed.as_bytes()).unwrap())
        );
    }

    #[test]
    fn key_directory_rotates_and_serves_every_key() {
        let dir = std::env::temp_dir().join(format!("alb-sim-idp-{}", uuid::Uuid::new_v4()));
        let keys = IdpKeyDir::new(&dir);
        assert!(keys.signing_key().is_err());
        assert_eq!(keys.jwks().unwrap(), r#"{"keys":[]}"#);
        let first = keys.generate_if_missing().unwrap().unwrap();
        assert_eq!(keys.generate_if_missing().unwrap(), None);
        // A fixed key: generating RSA keys is slow in test builds.
        let second = "fixture-b".to_owned();
        keys.add(&IdpKey::rsa(RsaFixture::B, &second).unwrap())
            .unwrap();
        assert_eq!(keys.signing_key().unwrap().kid, second);
        let doc: Value = serde_json::from_str(&keys.jwks().unwrap()).unwrap();
        let mut kids: Vec<&str> = doc["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap())
            .collect();
        kids.sort_unstable();
        let mut want = vec![first.as_str(), second.as_str()];
        want.sort_unstable();
        assert_eq!(kids, want);
        assert_eq!(doc["keys"][0]["alg"], "RS256");
        assert_eq!(doc["keys"][0]["kty"], "RSA");
        assert!(keys.remove(&second).is_err(), "the current key stays");
        keys.remove(&first).unwrap();
        assert_eq!(keys.list().unwrap(), vec![second.clone()]);
        assert!(keys.remove("../x").is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
