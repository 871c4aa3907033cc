//! The two TLS backends, with the gateway's settings (src/gateway/tls-certificates.ts): TLS 1.2
//! minimum, its AEAD suites in its order with the server's order preferred, X25519, P-256 and
//! P-384. No session tickets (the gateway sets SSL_OP_NO_TICKET; libpq never resumes).
//! ALPN `postgresql` is offered for PostgreSQL 17's direct TLS.
use std::io;

use crate::args::{Args, Backend};

pub enum Acceptor {
    #[cfg(feature = "rustls")]
    Rustls(tokio_rustls::TlsAcceptor),
    #[cfg(feature = "openssl")]
    Openssl(openssl::ssl::SslContext),
}

impl Acceptor {
    pub fn new(args: &Args) -> Result<Acceptor, String> {
        match args.backend {
            #[cfg(feature = "rustls")]
            Backend::Rustls => rustls_acceptor(&args.cert, &args.key).map_err(|e| e.to_string()),
            #[cfg(feature = "openssl")]
            Backend::Openssl => openssl_context(&args.cert, &args.key).map_err(|e| e.to_string()),
            #[allow(unreachable_patterns)]
            b => Err(format!("backend {b:?} was not built in (cargo feature)")),
        }
    }
}

#[cfg(feature = "rustls")]
fn rustls_acceptor(cert: &str, key: &str) -> Result<Acceptor, Box<dyn std::error::Error>> {
    use rustls::crypto::aws_lc_rs::{cipher_suite as cs, default_provider, kx_group};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use std::sync::Arc;

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
    let certs = CertificateDer::pem_file_iter(cert)?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.ignore_client_order = true;
    config.send_tls13_tickets = 0;
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(Acceptor::Rustls(tokio_rustls::TlsAcceptor::from(Arc::new(
        config,
    ))))
}

#[cfg(feature = "openssl")]
fn openssl_context(cert: &str, key: &str) -> Result<Acceptor, openssl::error::ErrorStack> {
    use openssl::ssl::{
        select_next_proto, AlpnError, SslContext, SslFiletype, SslMethod, SslOptions, SslVersion,
    };

    let mut b = SslContext::builder(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_ciphersuites(
        "TLS_AES_256_GCM_SHA384:TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256",
    )?;
    b.set_cipher_list("ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-RSA-AES128-GCM-SHA256")?;
    b.set_groups_list("X25519:P-256:P-384")?;
    b.set_options(SslOptions::CIPHER_SERVER_PREFERENCE | SslOptions::NO_TICKET);
    b.set_num_tickets(0)?;
    // Read whole TLS records (and what follows) per read, not a 5-byte header and then the
    // body: two syscalls per record otherwise, since the BIO here is the socket itself.
    b.set_read_ahead(true);
    b.set_certificate_chain_file(cert)?;
    b.set_private_key_file(key, SslFiletype::PEM)?;
    b.check_private_key()?;
    b.set_alpn_select_callback(|_, offered| {
        select_next_proto(b"\x0apostgresql", offered).ok_or(AlpnError::NOACK)
    });
    Ok(Acceptor::Openssl(b.build()))
}

#[cfg(feature = "openssl")]
pub async fn openssl_accept(
    ctx: &openssl::ssl::SslContext,
    tcp: tokio::net::TcpStream,
) -> io::Result<tokio_openssl::SslStream<tokio::net::TcpStream>> {
    let ssl = openssl::ssl::Ssl::new(ctx).map_err(io::Error::other)?;
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).map_err(io::Error::other)?;
    std::pin::Pin::new(&mut stream)
        .accept()
        .await
        .map_err(io::Error::other)?;
    Ok(stream)
}
