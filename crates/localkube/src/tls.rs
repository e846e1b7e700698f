//! The cluster's identity: a fresh CA, a server certificate for 127.0.0.1 signed
//! by it, a random bearer token, and the kubeconfig that ties them together.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::Error;

/// The certificates and token of one localkube instance.
pub(crate) struct Identity {
    pub ca_pem: String,
    pub ca_der: CertificateDer<'static>,
    /// Signs client certificates ([`crate::LocalKube::client_certificate`]).
    pub issuer: Issuer<'static, KeyPair>,
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
    pub token: String,
}

impl Identity {
    /// The server's TLS settings: asks clients for a certificate through `verifier`.
    pub(crate) fn server_config(
        &self,
        verifier: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    ) -> Result<Arc<rustls::ServerConfig>, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                self.chain.clone(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone())),
            )
            .map_err(|e| Error::Tls(e.to_string()))?;
        // HTTP/1.1 only: WebSocket exec needs it, and every client speaks it.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// Whether an issued client certificate is valid now or already expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// Valid now (and for a long time).
    Current,
    /// Valid only in the year 2000.
    Expired,
}

/// A client certificate for `user` (common name) in `groups` (organizations), signed by the CA.
pub(crate) fn client_certificate(
    issuer: &Issuer<'static, KeyPair>,
    user: &str,
    groups: &[&str],
    validity: Validity,
) -> Result<(String, String), Error> {
    let key = KeyPair::generate().map_err(tls_err("client key"))?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, user);
    for g in groups {
        params.distinguished_name.push(DnType::OrganizationName, *g);
    }
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    match validity {
        // rcgen's defaults: 1975 to 4096.
        Validity::Current => {}
        Validity::Expired => {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2000, 12, 31);
        }
    }
    let cert = params
        .signed_by(&key, issuer)
        .map_err(tls_err("client certificate"))?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn tls_err(what: &str) -> impl FnOnce(rcgen::Error) -> Error + '_ {
    move |e| Error::Tls(format!("{what}: {e}"))
}

/// Generate a CA and a server certificate valid for `127.0.0.1` and `localhost`.
pub(crate) fn generate() -> Result<Identity, Error> {
    let ca_key = KeyPair::generate().map_err(tls_err("CA key"))?;
    let mut ca_params = CertificateParams::default();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "localkube-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca_cert = ca_params.self_signed(&ca_key).map_err(tls_err("CA"))?;
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().map_err(tls_err("server key"))?;
    // The names kube-apiserver's serving certificate carries (its
    // `--service-cluster-ip-range` first address and the `kubernetes`
    // Service's DNS names, `pkg/controlplane/services.go` and
    // `cmd/kube-apiserver/app/options`), so clients in pods verify it.
    let mut params = CertificateParams::new(vec![
        "localhost".to_string(),
        "kubernetes".to_string(),
        "kubernetes.default".to_string(),
        "kubernetes.default.svc".to_string(),
        "kubernetes.default.svc.cluster.local".to_string(),
    ])
    .map_err(tls_err("server certificate"))?;
    for ip in [
        std::net::Ipv4Addr::LOCALHOST,
        crate::sys::netns::KUBERNETES_SERVICE_IP,
    ] {
        params.subject_alt_names.push(SanType::IpAddress(ip.into()));
    }
    params
        .distinguished_name
        .push(DnType::CommonName, "localkube-apiserver");
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = params
        .signed_by(&server_key, &issuer)
        .map_err(tls_err("server certificate"))?;

    let token = random_token();
    Ok(Identity {
        ca_pem: ca_cert.pem(),
        ca_der: CertificateDer::from(ca_cert.der().to_vec()),
        issuer,
        chain: vec![
            CertificateDer::from(server_cert.der().to_vec()),
            CertificateDer::from(ca_cert.der().to_vec()),
        ],
        key_der: server_key.serialize_der(),
        token,
    })
}

/// A fresh random bearer token.
pub(crate) fn random_token() -> String {
    let mut rng = rand::rng();
    (0..40)
        .map(|_| {
            const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
            CHARS[rng.random_range(0..CHARS.len())] as char
        })
        .collect()
}

/// Write `ca.crt` and `kubeconfig` into `dir`; returns the kubeconfig's path.
pub(crate) fn write_kubeconfig(
    dir: &Path,
    identity: &Identity,
    server_url: &str,
    context: &str,
) -> Result<PathBuf, Error> {
    let ca_path = dir.join("ca.crt");
    write_file(&ca_path, identity.ca_pem.as_bytes())?;
    let config = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [{
            "name": context,
            "cluster": {"server": server_url, "certificate-authority": ca_path},
        }],
        "users": [{"name": context, "user": {"token": identity.token}}],
        "contexts": [{
            "name": context,
            "context": {"cluster": context, "user": context, "namespace": "default"},
        }],
        "current-context": context,
    });
    let text = serde_saphyr::to_string(&config)
        .map_err(|e| Error::Config(format!("cannot render kubeconfig: {e}")))?;
    let path = dir.join("kubeconfig");
    write_file(&path, text.as_bytes())?;
    Ok(path)
}

/// Write through a temporary name, so readers never see half a file.
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))
}
