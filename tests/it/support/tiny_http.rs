//! A tiny HTTP/1.1 server that answers every request with one canned response: a
//! stranger holding a port (e.g. claude-code-router's Node server on the proxy port),
//! or any fixed JSON endpoint a test needs. A [`RoutedHttp`] without routes; dropping
//! it stops it.
#![allow(dead_code)]

use std::net::SocketAddr;

use super::routed_http::RoutedHttp;

pub struct TinyHttp {
    pub addr: SocketAddr,
    _server: RoutedHttp,
}

impl TinyHttp {
    /// Listen on 127.0.0.1:`port` (0 for a free one) and answer `status` with `body`
    /// (`content_type`) to every request.
    pub fn start(port: u16, status: u16, content_type: &str, body: &str) -> TinyHttp {
        let server = RoutedHttp::with_fallback(
            port,
            Vec::new(),
            (status, content_type.to_owned(), body.to_owned()),
        );
        TinyHttp {
            addr: server.addr,
            _server: server,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}
