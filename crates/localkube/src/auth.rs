//! Who is calling: bearer tokens and client certificates, as the API server
//! authenticates them.
//!
//! Modelled on kube-apiserver's authenticators (Kubernetes docs
//! "Authenticating"; `staging/src/k8s.io/apiserver/pkg/authentication`):
//!
//! - **X509 client certificates** signed by the cluster's CA: the subject's
//!   common name is the user name, its organizations the groups
//!   (`request/x509/x509.go`, `CommonNameUserConversion`). The TLS handshake
//!   accepts any certificate (the server asks for one but does not insist);
//!   the chain and validity are checked per connection, and a certificate that
//!   fails is not an identity, so the request is `401 Unauthorized`, as with
//!   the real server (whose `tls.Config` uses `RequestClientCert`).
//! - **Static tokens**: the admin token of the generated kubeconfig, a
//!   `--token-auth-file` style CSV (`token,user,uid,"group1,group2"`), and
//!   tokens added or revoked while running (how a test rotates a
//!   service-account token).
//!
//! Every authenticated user is also in `system:authenticated`, as the API server adds it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};

use crate::Error;

/// The admin user of the generated kubeconfig.
pub const ADMIN_USER: &str = "localkube";
/// The group that may do anything (the API server's `system:masters`).
pub const MASTERS_GROUP: &str = "system:masters";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    pub fn new(name: impl Into<String>, groups: &[&str]) -> Self {
        let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
        if !groups.iter().any(|g| g == "system:authenticated") {
            groups.push("system:authenticated".into());
        }
        UserInfo {
            name: name.into(),
            groups,
        }
    }
}

/// The tokens and the client CA the server accepts.
pub(crate) struct Authenticator {
    tokens: RwLock<HashMap<String, UserInfo>>,
    /// Checks client certificate chains against the cluster CA.
    verifier: Arc<dyn ClientCertVerifier>,
}

impl Authenticator {
    pub(crate) fn new(ca_der: &CertificateDer<'static>) -> Result<Self, Error> {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(ca_der.clone())
            .map_err(|e| Error::Tls(format!("client CA: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier =
            rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .allow_unauthenticated()
                .build()
                .map_err(|e| Error::Tls(format!("client verifier: {e}")))?;
        Ok(Authenticator {
            tokens: RwLock::new(HashMap::new()),
            verifier,
        })
    }

    pub(crate) fn add_token(&self, token: &str, user: UserInfo) {
        self.tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.to_string(), user);
    }

    pub(crate) fn remove_token(&self, token: &str) {
        self.tokens
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(token);
    }

    /// Read a kube-apiserver `--token-auth-file`: `token,user,uid[,"group1,group2"]` per line.
    pub(crate) fn load_token_file(&self, path: &Path) -> Result<(), Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading token file {}", path.display()), e))?;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields = split_csv(line);
            if fields.len() < 3 || fields[0].is_empty() || fields[1].is_empty() {
                return Err(Error::Config(format!(
                    "token file {} line {}: expected token,user,uid[,\"group1,group2\"]",
                    path.display(),
                    i + 1
                )));
            }
            let groups: Vec<&str> = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            self.add_token(&fields[0], UserInfo::new(&fields[1], &groups));
        }
        Ok(())
    }

    pub(crate) fn by_token(&self, token: &str) -> Option<UserInfo> {
        let tokens = self.tokens.read().unwrap_or_else(|p| p.into_inner());
        // Compare every token in constant time, so none can be guessed byte by byte.
        let mut found = None;
        for (t, user) in tokens.iter() {
            if same(t.as_bytes(), token.as_bytes()) {
                found = Some(user.clone());
            }
        }
        found
    }

    /// The identity of a connection's client certificate chain, if it is valid now.
    pub(crate) fn by_certificate(&self, chain: &[CertificateDer<'static>]) -> Option<UserInfo> {
        let (end, intermediates) = chain.split_first()?;
        if let Err(e) = self
            .verifier
            .verify_client_cert(end, intermediates, UnixTime::now())
        {
            tracing::debug!("client certificate rejected: {e}");
            return None;
        }
        let (_, cert) = x509_parser::parse_x509_certificate(end.as_ref()).ok()?;
        let subject = cert.subject();
        let name = subject
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok())?
            .to_string();
        let groups: Vec<&str> = subject
            .iter_organization()
            .filter_map(|o| o.as_str().ok())
            .collect();
        Some(UserInfo::new(name, &groups))
    }

    /// The verifier the TLS server uses: it asks for a certificate and proves
    /// the client holds its key, but accepts the chain whatever it is
    /// (`by_certificate` judges it), as `RequestClientCert` does.
    pub(crate) fn handshake_verifier(&self) -> Arc<dyn ClientCertVerifier> {
        Arc::new(RequestClientCert(Arc::clone(&self.verifier)))
    }
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Split one CSV line (double quotes group commas).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => out.push(String::new()),
            c => out.last_mut().map(|s| s.push(c)).unwrap_or_default(),
        }
    }
    out.into_iter().map(|s| s.trim().to_string()).collect()
}

#[derive(Debug)]
struct RequestClientCert(Arc<dyn ClientCertVerifier>);

impl ClientCertVerifier for RequestClientCert {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.0.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_file_lines() {
        assert_eq!(
            split_csv(r#"abc,alice,1,"dev,ops""#),
            vec!["abc", "alice", "1", "dev,ops"]
        );
        assert_eq!(split_csv("t,bob,2"), vec!["t", "bob", "2"]);
    }
}
