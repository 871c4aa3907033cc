//! Command-line settings; no argument parser crate for five flags.
use std::sync::Arc;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Backend {
    Rustls,
    Openssl,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RuntimeKind {
    Multi,
    PerCore,
}

pub struct Args {
    pub backend: Backend,
    pub cert: String,
    pub key: String,
    pub socket: Arc<str>,
    pub listen: String,
    pub threads: usize,
    pub runtime: RuntimeKind,
}

impl Args {
    pub fn parse(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
        let (mut backend, mut cert, mut key, mut socket) = (None, None, None, None);
        let mut listen = "127.0.0.1:0".to_string();
        let mut threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let mut runtime = RuntimeKind::PerCore;
        while let Some(flag) = it.next() {
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--backend" => {
                    backend = Some(match value.as_str() {
                        "rustls" => Backend::Rustls,
                        "openssl" => Backend::Openssl,
                        _ => return Err(format!("unknown backend {value}")),
                    })
                }
                "--cert" => cert = Some(value),
                "--key" => key = Some(value),
                "--socket" => socket = Some(Arc::from(value.as_str())),
                "--listen" => listen = value,
                "--threads" => {
                    threads = value
                        .parse()
                        .map_err(|_| format!("bad --threads {value}"))?
                }
                "--runtime" => {
                    runtime = match value.as_str() {
                        "multi" => RuntimeKind::Multi,
                        "percore" => RuntimeKind::PerCore,
                        _ => return Err(format!("unknown runtime {value}")),
                    }
                }
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(Args {
            backend: backend.ok_or("--backend rustls|openssl is required")?,
            cert: cert.ok_or("--cert is required")?,
            key: key.ok_or("--key is required")?,
            socket: socket.ok_or("--socket is required")?,
            listen,
            threads: threads.max(1),
            runtime,
        })
    }
}
