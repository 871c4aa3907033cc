//! The native floor: the least a native process does to put TLS in front of PostgreSQL, the
//! counterpart of bench/lib/node-floor-server.ts. It accepts TCP on loopback, answers libpq's
//! SSLRequest with 'S' (GSSENCRequest with 'N'; a ClientHello first is direct TLS), terminates
//! TLS with the gateway's settings and relays bytes both ways to the server's Unix socket.
//! PostgreSQL does SCRAM itself over that socket; nothing here parses past the first 8 bytes.
//!
//! Usage: pgwarden-floor --backend rustls|openssl --cert FILE --key FILE --socket PATH
//!          [--listen 127.0.0.1:0] [--threads N (default: the cores)] [--runtime percore|multi]
//! Prints `ready PORT` on stdout once it listens; runs until killed (SIGTERM ends it).
mod args;
mod preamble;
mod relay;
mod tls;

use std::io::Write;
use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::args::{Args, RuntimeKind};
use crate::tls::Acceptor;

/// A client that has not finished the preamble and the TLS handshake by then is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn main() {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => fail(&e),
    };
    let acceptor = match Acceptor::new(&args) {
        Ok(a) => Arc::new(a),
        Err(e) => fail(&format!("TLS setup: {e}")),
    };
    let listener = StdListener::bind(&args.listen)
        .unwrap_or_else(|e| fail(&format!("listen {}: {e}", args.listen)));
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| fail(&e.to_string()));
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("ready {port}");
    let _ = std::io::stdout().flush();

    match args.runtime {
        // One work-stealing runtime with a worker per core: connections move to an idle core.
        RuntimeKind::Multi => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads)
                .enable_all()
                .build()
                .unwrap_or_else(|e| fail(&e.to_string()));
            rt.block_on(serve(listener, acceptor, args.socket.clone()));
        }
        // One single-threaded runtime per core, each accepting on the same listening socket:
        // no cross-thread wake-ups, but a connection stays on the core that accepted it.
        RuntimeKind::PerCore => {
            let mut threads = Vec::new();
            for _ in 0..args.threads {
                let l = listener
                    .try_clone()
                    .unwrap_or_else(|e| fail(&e.to_string()));
                let (acceptor, socket) = (acceptor.clone(), args.socket.clone());
                threads.push(std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap_or_else(|e| fail(&e.to_string()));
                    rt.block_on(serve(l, acceptor, socket));
                }));
            }
            for t in threads {
                let _ = t.join();
            }
        }
    }
}

async fn serve(listener: StdListener, acceptor: Arc<Acceptor>, socket: Arc<str>) {
    let listener = TcpListener::from_std(listener).unwrap_or_else(|e| fail(&e.to_string()));
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(c) => c,
            // Out of descriptors and the like: wait a little rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let (acceptor, socket) = (acceptor.clone(), socket.clone());
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let _ = relay::connection(tcp, &acceptor, &socket, HANDSHAKE_TIMEOUT).await;
        });
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("pgwarden-floor: {msg}");
    std::process::exit(2);
}
