//! A raw HTTP/1.1 origin on loopback, for answers no well-behaved server framework gives:
//! bodies without an end, stalls mid-body, redirects and answers ordered by the test. It
//! reads each request's head and hands the target to the test's handler, which writes
//! whatever it likes; every connection is counted and has a thread of its own.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

pub struct RawOrigin {
    pub addr: SocketAddr,
    connections: Arc<AtomicUsize>,
}

impl RawOrigin {
    /// Serves every connection with `handler(target, stream)` until the test ends.
    pub fn start(
        handler: impl Fn(&str, &mut TcpStream) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> RawOrigin {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let handler = Arc::new(handler);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let handler = Arc::clone(&handler);
                std::thread::spawn(move || serve_connection(stream, handler.as_ref()));
            }
        });
        RawOrigin { addr, connections }
    }

    pub fn url(&self, target: &str) -> String {
        format!("http://{}{target}", self.addr)
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn serve_connection(
    mut stream: TcpStream,
    handler: &(impl Fn(&str, &mut TcpStream) -> std::io::Result<()> + ?Sized),
) {
    let Ok(reading) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reading);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 0) && header != "\r\n" {
        header.clear();
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or("/");
    let _ = handler(target, &mut stream);
    let _ = stream.flush();
    // Closing first with the client's bytes unread would reset the connection under the
    // answer; the client closes once it has read it.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let _ = reader.read(&mut [0u8; 1]);
}

/// Writes a whole answer: the status line, `headers`, a Content-Length and the body.
pub fn respond(
    stream: &mut TcpStream,
    status: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<()> {
    let mut head = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)
}
