//! A small blocking SIP device for the registrar's tests: it writes REGISTERs by hand (so a
//! test can send exactly the bytes it means, replayed nonce counts and all) over UDP or TCP,
//! reads the final response, and answers digest challenges with its own MD5/SHA-256 code
//! (independent of trunkline's, so the two check each other).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use md5::{Digest as _, Md5};
use sha2::Sha256;

const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);

/// A final response: status code and headers in order.
#[derive(Debug, Clone)]
pub struct SipResponse {
    pub code: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl SipResponse {
    fn parse(text: &str) -> Option<Self> {
        let mut lines = text.split("\r\n");
        let code = lines.next()?.split(' ').nth(1)?.parse().ok()?;
        let headers = lines
            .take_while(|line| !line.is_empty())
            .filter_map(|line| {
                let (name, value) = line.split_once(':')?;
                Some((name.trim().to_owned(), value.trim().to_owned()))
            })
            .collect();
        Some(Self {
            code,
            headers,
            text: text.to_owned(),
        })
    }

    /// Every value of a header (case-insensitive name).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.all(name).into_iter().next()
    }

    /// The Contact URIs of a 200 with their `expires`.
    pub fn contacts(&self) -> Vec<(String, u32)> {
        self.all("Contact")
            .into_iter()
            .flat_map(|value| value.split(','))
            .filter_map(|contact| {
                let open = contact.find('<')?;
                let close = contact.find('>')?;
                let expires = contact[close..]
                    .split(';')
                    .find_map(|p| p.trim().strip_prefix("expires="))?
                    .parse()
                    .ok()?;
                Some((contact[open + 1..close].to_owned(), expires))
            })
            .collect()
    }
}

enum Link {
    Udp(UdpSocket),
    Tcp(TcpStream, Vec<u8>),
}

/// One device: a socket to the registrar and a dialog-less REGISTER state (Call-ID, CSeq).
pub struct Device {
    link: Link,
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub user: String,
    pub domain: String,
    pub call_id: String,
    pub cseq: u32,
    /// Nonce count for the current nonce.
    pub nc: u32,
}

impl Device {
    pub fn udp(server: SocketAddr, user: &str, domain: &str) -> Self {
        Self::udp_from(IpAddr::from([127, 0, 0, 1]), server, user, domain)
    }

    /// From a chosen local address (a second "source" on loopback: 127.0.0.2).
    pub fn udp_from(ip: IpAddr, server: SocketAddr, user: &str, domain: &str) -> Self {
        let socket = UdpSocket::bind(SocketAddr::new(ip, 0)).expect("bind udp");
        socket.set_read_timeout(Some(ANSWER_TIMEOUT)).unwrap();
        let local = socket.local_addr().unwrap();
        Self::new(Link::Udp(socket), local, server, user, domain)
    }

    pub fn tcp(server: SocketAddr, user: &str, domain: &str) -> Self {
        let stream = TcpStream::connect(server).expect("connect tcp");
        stream.set_read_timeout(Some(ANSWER_TIMEOUT)).unwrap();
        let local = stream.local_addr().unwrap();
        Self::new(Link::Tcp(stream, Vec::new()), local, server, user, domain)
    }

    fn new(link: Link, local: SocketAddr, server: SocketAddr, user: &str, domain: &str) -> Self {
        Self {
            link,
            local,
            server,
            user: user.to_owned(),
            domain: domain.to_owned(),
            call_id: format!("{}@test", uuid::Uuid::new_v4()),
            cseq: 0,
            nc: 0,
        }
    }

    fn transport(&self) -> &'static str {
        match self.link {
            Link::Udp(_) => "UDP",
            Link::Tcp(..) => "TCP",
        }
    }

    /// This device's own Contact URI.
    pub fn contact(&self) -> String {
        format!(
            "sip:{}@{};transport={}",
            self.user,
            self.local,
            self.transport().to_ascii_lowercase()
        )
    }

    /// Sends a request of `method` with the next CSeq and the given extra header lines (each
    /// ending in CRLF); returns the final response.
    pub fn request(&mut self, method: &str, extra: &str) -> SipResponse {
        self.cseq += 1;
        let text = format!(
            "{method} sip:{domain} SIP/2.0\r\n\
             Via: SIP/2.0/{transport} {local};branch=z9hG4bK{branch};rport\r\n\
             Max-Forwards: 70\r\n\
             From: <sip:{user}@{domain}>;tag={tag}\r\n\
             To: <sip:{user}@{domain}>\r\n\
             Call-ID: {call_id}\r\n\
             CSeq: {cseq} {method}\r\n\
             User-Agent: trunkline-test-device\r\n\
             {extra}Content-Length: 0\r\n\r\n",
            domain = self.domain,
            transport = self.transport(),
            local = self.local,
            branch = uuid::Uuid::new_v4().simple(),
            user = self.user,
            tag = &self.call_id[..8],
            call_id = self.call_id,
            cseq = self.cseq,
        );
        self.send_raw(&text)
    }

    /// REGISTER with this device's Contact and `expires`, plus `extra` header lines.
    pub fn register(&mut self, expires: u32, extra: &str) -> SipResponse {
        let contact = self.contact();
        self.request(
            "REGISTER",
            &format!("Contact: <{contact}>\r\nExpires: {expires}\r\n{extra}"),
        )
    }

    /// REGISTER, answer the challenge (the first offered, or `algorithm`) with `password`, and
    /// return the final response to the answer.
    pub fn register_with(
        &mut self,
        password: &str,
        expires: u32,
        algorithm: Option<&str>,
    ) -> SipResponse {
        let first = self.register(expires, "");
        assert_eq!(first.code, 401, "first REGISTER: {}", first.text);
        let challenge = pick(&first, algorithm);
        let authorization = self.answer(&challenge, password);
        self.register(expires, &format!("Authorization: {authorization}\r\n"))
    }

    /// An Authorization value answering `challenge` (a WWW-Authenticate value) for REGISTER,
    /// with the next nonce count.
    pub fn answer(&mut self, challenge: &str, password: &str) -> String {
        self.nc += 1;
        answer(
            challenge,
            &self.user,
            password,
            &format!("sip:{}", self.domain),
            self.nc,
        )
    }

    /// Sends bytes as they are and reads one final response (1xx skipped).
    pub fn send_raw(&mut self, text: &str) -> SipResponse {
        let deadline = Instant::now() + ANSWER_TIMEOUT;
        match &mut self.link {
            Link::Udp(socket) => {
                socket.send_to(text.as_bytes(), self.server).expect("send");
                let mut buffer = vec![0u8; 65_536];
                loop {
                    assert!(Instant::now() < deadline, "no answer to:\n{text}");
                    let (n, _) = socket.recv_from(&mut buffer).expect("no answer in time");
                    let response = SipResponse::parse(&String::from_utf8_lossy(&buffer[..n]))
                        .expect("a SIP response");
                    if response.code >= 200 {
                        return response;
                    }
                }
            }
            Link::Tcp(stream, pending) => {
                stream.write_all(text.as_bytes()).expect("send");
                loop {
                    if let Some(end) = find(pending, b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&pending[..end + 4]).into_owned();
                        pending.drain(..end + 4);
                        let response = SipResponse::parse(&head).expect("a SIP response");
                        if response.code >= 200 {
                            return response;
                        }
                        continue;
                    }
                    assert!(Instant::now() < deadline, "no answer to:\n{text}");
                    let mut chunk = [0u8; 4096];
                    let n = stream.read(&mut chunk).expect("no answer in time");
                    assert!(n > 0, "connection closed");
                    pending.extend_from_slice(&chunk[..n]);
                }
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The challenge to answer: the one with `algorithm`, else the first.
pub fn pick(response: &SipResponse, algorithm: Option<&str>) -> String {
    let challenges = response.all("WWW-Authenticate");
    assert!(!challenges.is_empty(), "no challenge in {}", response.text);
    match algorithm {
        None => challenges[0].to_owned(),
        Some(wanted) => challenges
            .iter()
            .find(|c| param(c, "algorithm").is_some_and(|a| a.eq_ignore_ascii_case(wanted)))
            .unwrap_or_else(|| panic!("no {wanted} challenge in {}", response.text))
            .to_string(),
    }
}

/// A parameter of a digest challenge (`realm`, `nonce`, `stale`, ...), unquoted.
pub fn param(challenge: &str, name: &str) -> Option<String> {
    let body = challenge.trim().strip_prefix("Digest")?.trim();
    let mut rest = body;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let key = key.trim().trim_start_matches(',').trim();
        let after = after.trim_start();
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], &quoted[end + 1..])
        } else {
            let end = after.find(',').unwrap_or(after.len());
            (after[..end].trim(), &after[end..])
        };
        if key.eq_ignore_ascii_case(name) {
            return Some(value.to_owned());
        }
        rest = next.trim_start().trim_start_matches(',').trim_start();
    }
    None
}

fn hash(algorithm: &str, input: &str) -> String {
    if algorithm.eq_ignore_ascii_case("SHA-256") {
        hex(&Sha256::digest(input.as_bytes()))
    } else {
        hex(&Md5::digest(input.as_bytes()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 7616 `qop=auth` answer to `challenge` for REGISTER `uri`.
pub fn answer(challenge: &str, user: &str, password: &str, uri: &str, nc: u32) -> String {
    let realm = param(challenge, "realm").expect("realm");
    let nonce = param(challenge, "nonce").expect("nonce");
    let algorithm = param(challenge, "algorithm").unwrap_or_else(|| "MD5".to_owned());
    let cnonce = format!("{:08x}", rand_u32());
    let nc = format!("{nc:08x}");
    let ha1 = hash(&algorithm, &format!("{user}:{realm}:{password}"));
    let ha2 = hash(&algorithm, &format!("REGISTER:{uri}"));
    let response = hash(
        &algorithm,
        &format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"),
    );
    format!(
        "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
         response=\"{response}\", algorithm={algorithm}, qop=auth, nc={nc}, cnonce=\"{cnonce}\""
    )
}

fn rand_u32() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    nanos ^ std::process::id().rotate_left(16)
}
