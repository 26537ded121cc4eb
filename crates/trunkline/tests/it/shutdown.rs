//! Stopping, stalling and faults around the store: SIGTERM ends the process within the shutdown
//! deadline whatever HTTP clients do, an unregister refused with a 5xx is tried again while the
//! deadline allows, a client that never finishes its headers is disconnected, a stored row that
//! cannot be opened fails alone, and status writes that fail are retried until they land.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::common::{
    create_user_registration, metric, wait_for_registration, Server, ServerOptions, Tenant,
};
use crate::kamailio::{Kamailio, KamailioOptions, Transport};

const WAIT: Duration = crate::common::STATUS_WAIT;

fn create(server: &Server, tenant: &Tenant, username: &str, kamailio: &Kamailio) -> String {
    create_user_registration(server, tenant, username, kamailio.addr(Transport::Udp))
}

fn http_addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

#[test]
fn sigterm_ends_within_the_deadline_despite_stalled_clients_and_retries_a_refused_unregister() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("leaving", "leaving-pw")
            .unregister_unavailable("leaving", 1),
    );
    let deadline_secs = 4;
    let mut server = Server::start_with(ServerOptions {
        engine: true,
        env: vec![
            (
                "TRUNKLINE_OUTBOUND_UNREGISTER_ON_SHUTDOWN".into(),
                "true".into(),
            ),
            (
                "TRUNKLINE_OUTBOUND_SHUTDOWN_DEADLINE_SECS".into(),
                deadline_secs.to_string(),
            ),
        ],
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create(&server, &tenant, "leaving", &kamailio);
    wait_for_registration(&server, &tenant, &id, |b| b["state"] == "registered");

    // An idle keep-alive connection, and a client that sent half a request and stalls.
    let mut idle = TcpStream::connect(http_addr(&server)).unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut answer = [0u8; 512];
    let n = idle.read(&mut answer).unwrap();
    assert!(String::from_utf8_lossy(&answer[..n]).starts_with("HTTP/1.1 200"));
    let mut stalled = TcpStream::connect(http_addr(&server)).unwrap();
    stalled
        .write_all(
            b"POST /api/sip/registrations HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n{",
        )
        .unwrap();

    let stopping = Instant::now();
    let exit = server.terminate();
    let took = stopping.elapsed();
    assert!(exit.success(), "{exit:?}");
    assert!(
        took < Duration::from_secs(deadline_secs + 3),
        "exit took {took:?} (deadline {deadline_secs} s)"
    );
    // The 503 to the first unregister was answered by another after Retry-After (1 s).
    let unregisters = kamailio
        .registers("leaving")
        .into_iter()
        .filter(|r| r.expires == Some(0))
        .count();
    assert!(unregisters >= 2, "unregisters sent: {unregisters}");
    drop((idle, stalled));
}

#[test]
fn a_row_that_cannot_be_opened_fails_alone_and_says_why() {
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("sealed-away", "sealed-away-pw")
            .subscriber("fine", "fine-pw"),
    );
    let mut server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let broken = create(&server, &tenant, "sealed-away", &kamailio);
    let fine = create(&server, &tenant, "fine", &kamailio);
    wait_for_registration(&server, &tenant, &fine, |b| b["state"] == "registered");
    server.terminate();
    // As if sealed with a key this node does not have.
    server.sql(&format!(
        "UPDATE registrations SET password_key_id = 'retired-key' WHERE id = '{broken}'"
    ));
    let server = server.restart();
    let status = wait_for_registration(&server, &tenant, &broken, |b| b["state"] == "failed_auth");
    let phrase = status["lastPhrase"].as_str().unwrap();
    assert!(
        phrase.contains("cannot open the stored password") && phrase.contains("retired-key"),
        "{status:#}"
    );
    kamailio.wait_for_registers("fine", 2, WAIT);
    wait_for_registration(&server, &tenant, &fine, |b| b["state"] == "registered");
}

#[test]
fn status_writes_that_fail_are_retried_until_they_land() {
    // The registrar answers the authenticated REGISTER 2 s late: time to take the lock.
    let kamailio = Kamailio::start(
        KamailioOptions::default()
            .subscriber("patient", "patient-pw")
            .slow_answer("patient", 2000),
    );
    let server = Server::start_with(ServerOptions {
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let id = create(&server, &tenant, "patient", &kamailio);
    // Another process holds the database's write lock past the store's busy (SQLite) or lock
    // (PostgreSQL) timeout, so the engine's batch with the outcome fails at least once. Reads
    // go on meanwhile (WAL; PostgreSQL's EXCLUSIVE mode admits readers), as the API needs.
    let (mut locker, lock) = if server.on_sqlite() {
        let locker = std::process::Command::new("sqlite3")
            .arg(server.db_path())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("sqlite3");
        (locker, "BEGIN IMMEDIATE;\nSELECT 'locked';\n")
    } else {
        let locker = std::process::Command::new("psql")
            .args(["-X", "-q", "-A", "-t"])
            .arg(server.database_url())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("psql");
        let lock = "BEGIN;\nLOCK TABLE registration_status IN EXCLUSIVE MODE;\n\
                    SELECT 'locked';\n";
        (locker, lock)
    };
    let mut stdin = locker.stdin.take().unwrap();
    let mut stdout = locker.stdout.take().unwrap();
    stdin.write_all(lock.as_bytes()).unwrap();
    let mut seen = [0u8; 7];
    stdout.read_exact(&mut seen).unwrap();
    assert_eq!(&seen, b"locked\n");
    wait_for_registration(&server, &tenant, &id, |b| b["state"] == "registered");
    let deadline = Instant::now() + WAIT;
    while metric(&server, "trunkline_status_write_failures_total") < 1.0 {
        assert!(Instant::now() < deadline, "no status write ever failed");
        std::thread::sleep(Duration::from_millis(100));
    }
    stdin
        .write_all(if server.on_sqlite() {
            &b"COMMIT;\n.quit\n"[..]
        } else {
            &b"COMMIT;\n\\q\n"[..]
        })
        .unwrap();
    drop(stdin);
    locker.wait().unwrap();
    // The outcome reaches the table once the lock is gone (read from the database, not the
    // live board).
    let deadline = Instant::now() + WAIT;
    loop {
        let state = server.sql(&format!(
            "SELECT state FROM registration_status WHERE registration_id = '{id}'"
        ));
        if state == "registered" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the status never reached the table"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let server = Server::start();
    let mut stalled = TcpStream::connect(http_addr(&server)).unwrap();
    stalled
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stalled
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    // hyper answers 408 or just closes; either way the connection ends.
    let ended = stalled.read_to_end(&mut rest);
    assert!(ended.is_ok(), "still open after 30 s: {ended:?}");
    let took = started.elapsed();
    assert!(
        (Duration::from_secs(9)..Duration::from_secs(15)).contains(&took),
        "closed after {took:?}"
    );
}
