//! TLS with rustls (aws-lc-rs), with the gateway's settings (src/gateway/tls-certificates.ts,
//! as native/floor does): TLS 1.2 and 1.3, its AEAD suites in its order with the server's
//! order preferred, X25519, P-256 and P-384, no session tickets, ALPN "postgresql" offered.
//! One `ServerConfig` per loaded certificate, shared by every handshake that uses it.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::crypto::aws_lc_rs::{cipher_suite as cs, default_provider, kx_group};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

pub const ALPN_POSTGRESQL: &[u8] = b"postgresql";

/// The certificates loaded by `setCertificate`, by certId.
#[derive(Default)]
pub struct Certificates {
    configs: Mutex<HashMap<u32, Arc<ServerConfig>>>,
}

impl Certificates {
    pub fn set(&self, cert_id: u32, chain_pem: &[u8], key_pem: &[u8]) -> Result<(), String> {
        let config = server_config(chain_pem, key_pem)?;
        self.lock().insert(cert_id, config);
        Ok(())
    }

    pub fn drop_cert(&self, cert_id: u32) {
        self.lock().remove(&cert_id);
    }

    pub fn get(&self, cert_id: u32) -> Option<Arc<ServerConfig>> {
        self.lock().get(&cert_id).cloned()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Arc<ServerConfig>>> {
        // A poisoned map is still a valid map (inserts and removes are single calls).
        self.configs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn server_config(chain_pem: &[u8], key_pem: &[u8]) -> Result<Arc<ServerConfig>, String> {
    let certs = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("certificate chain: {e}"))?;
    if certs.is_empty() {
        return Err("certificate chain: no CERTIFICATE in the PEM".into());
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("private key: {e}"))?;
    let mut provider = default_provider();
    provider.cipher_suites = vec![
        cs::TLS13_AES_256_GCM_SHA384,
        cs::TLS13_AES_128_GCM_SHA256,
        cs::TLS13_CHACHA20_POLY1305_SHA256,
        cs::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        cs::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        cs::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    ];
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    let mut config = ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.ignore_client_order = true;
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![ALPN_POSTGRESQL.to_vec()];
    Ok(Arc::new(config))
}

/// The protocol version as Node names it.
pub fn version_name(v: Option<rustls::ProtocolVersion>) -> String {
    match v {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3".into(),
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2".into(),
        Some(other) => format!("{other:?}"),
        None => "unknown".into(),
    }
}

/// The cipher suite's IANA name (rustls spells the TLS 1.3 ones TLS13_…).
pub fn cipher_name(s: Option<rustls::SupportedCipherSuite>) -> String {
    let Some(s) = s else { return "unknown".into() };
    let name = s
        .suite()
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| format!("{:?}", s.suite()));
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name,
    }
}
