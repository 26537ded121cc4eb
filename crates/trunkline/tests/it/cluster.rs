//! Several nodes on one PostgreSQL database (always PostgreSQL here, whichever backend the rest
//! of the run uses): what one node's API changes, the others act on at once, through the
//! change triggers' notifications. Each receiving node's periodic reconcile is set to an hour,
//! so only a notification can explain a prompt reaction.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::common::{create_user_registration, json, registration_status, Server, ServerOptions};
use crate::kamailio::{Kamailio, KamailioOptions, Transport};
use crate::registrar::{create_credential, objects, realm};
use crate::sip_client::Device;

const PASSWORD: &str = "correct horse 1";

/// Two nodes, `a` and `b`, on one fresh database; `b_env` is added to `b`'s environment.
fn two_nodes(b_env: &[(&str, &str)]) -> (Server, Server) {
    let database = test_postgres::PgServer::shared().database();
    let mut env = cluster_node_env(&database, "node-a");
    env.push((
        "TRUNKLINE_OUTBOUND_RECONCILE_SECS".to_owned(),
        "3600".to_owned(),
    ));
    let a = Server::start_with(ServerOptions {
        env,
        ..ServerOptions::default()
    });
    let mut env = vec![("TRUNKLINE_NODE_ID".to_owned(), "node-b".to_owned())];
    env.extend(
        b_env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    let b = a.start_beside(env);
    (a, b)
}

#[test]
fn a_registration_changed_through_one_node_is_acted_on_by_another() {
    let kamailio = Kamailio::start(KamailioOptions::default().subscriber("roaming", "roaming-pw"));
    // Node a serves the API only; node b runs the engine.
    let (a, b) = two_nodes(&[("TRUNKLINE_OUTBOUND_ENABLED", "true")]);
    let tenant = a.tenant();
    let id = create_user_registration(&a, &tenant, "roaming", kamailio.addr(Transport::Udp));
    kamailio.wait_for_binding("roaming", |_| true, Duration::from_secs(15));
    // The status b's engine writes is what a shows.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while registration_status(&a, &tenant, &id)["state"] != "registered" {
        assert!(
            std::time::Instant::now() < deadline,
            "a never showed b's status"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Both nodes are listed; b's engine holds the registration.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let nodes = cluster(&a, &tenant);
        let owned: Vec<(&str, u64)> = nodes
            .iter()
            .map(|n| (n["nodeId"].as_str().unwrap(), n["owned"].as_u64().unwrap()))
            .collect();
        if owned == [("node-a", 0), ("node-b", 1)] {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "cluster: {owned:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // Deleted through a: b unregisters.
    let status = a
        .ultravox(
            Method::DELETE,
            &format!("/api/sip/registrations/{id}"),
            &tenant,
        )
        .send()
        .unwrap()
        .status();
    assert_eq!(status, 204);
    kamailio.wait_for_bindings(
        "roaming",
        |bindings| bindings.is_empty(),
        Duration::from_secs(15),
    );
    assert!(b.logs().iter().all(|line| !line.contains("panicked")));
    // A clean stop leaves the cluster at once.
    let mut b = b;
    assert!(b.terminate().success());
    let nodes = cluster(&a, &tenant);
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0]["nodeId"], "node-a");
}

/// `GET /v1/cluster`'s nodes.
fn cluster(server: &Server, tenant: &crate::common::Tenant) -> Vec<serde_json::Value> {
    let (status, body) = json(
        server
            .client
            .get(server.url("/v1/cluster"))
            .header("X-API-Key", &tenant.api_key)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    body["nodes"].as_array().unwrap().clone()
}

#[test]
fn a_single_node_lists_itself() {
    let server = Server::start_with(ServerOptions {
        env: vec![
            ("TRUNKLINE_NODE_ID".to_owned(), "solo".to_owned()),
            ("TRUNKLINE_CLUSTER_RENEW_SECS".to_owned(), "1".to_owned()),
        ],
        ..ServerOptions::default()
    });
    let tenant = server.tenant();
    let nodes = cluster(&server, &tenant);
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    assert_eq!(nodes[0]["nodeId"], "solo");
    assert_eq!(nodes[0]["owned"], 0, "the engine is off");
    let heard =
        chrono::DateTime::parse_from_rfc3339(nodes[0]["lastHeartbeat"].as_str().unwrap()).unwrap();
    assert!((chrono::Utc::now() - heard.with_timezone(&chrono::Utc)).num_seconds() < 60);
    let anonymous = server.client.get(server.url("/v1/cluster")).send().unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[test]
fn a_credential_changed_through_one_node_counts_at_once_on_another_registrar() {
    let (a, b) = two_nodes(&[]);
    let tenant = a.tenant();
    let id = create_credential(&a, &tenant, "nomad", PASSWORD);
    // A device registers with node b; its binding is listed through node a.
    let mut phone = Device::udp(b.sip.unwrap(), "nomad", &realm(&tenant));
    assert_eq!(phone.register_with(PASSWORD, 300, None).code, 200);
    assert_eq!(objects(&a, &tenant, &id).len(), 1);
    // Disabled through node a: node b refuses the device.
    let (status, _) = json(
        a.vobiz(Method::PUT, &format!("/credentials/{id}"), &tenant)
            .json(&json!({"enabled": false}))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200);
    assert!(objects(&b, &tenant, &id).is_empty());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while phone.register_with(PASSWORD, 300, None).code != 403 {
        assert!(
            std::time::Instant::now() < deadline,
            "node b never heard that the credential was disabled"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Per account, how many contacts Kamailio holds.
fn contacts_per_account(kamailio: &Kamailio) -> std::collections::BTreeMap<String, usize> {
    let mut counts = std::collections::BTreeMap::new();
    for binding in kamailio.all_bindings() {
        *counts.entry(binding.username).or_insert(0) += 1;
    }
    counts
}

/// Waits until `/v1/cluster` (through `server`) shows exactly `expected` nodes owning `total`
/// registrations between them, each within one of an equal share, and Kamailio holds exactly
/// one contact for each of `accounts`.
fn wait_until_shared(
    server: &Server,
    tenant: &crate::common::Tenant,
    kamailio: &Kamailio,
    expected: &[&str],
    accounts: &[String],
) {
    let total = accounts.len() as u64;
    let share = total.div_ceil(expected.len() as u64);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let nodes = cluster(server, tenant);
        let owned: Vec<(String, u64)> = nodes
            .iter()
            .map(|n| {
                (
                    n["nodeId"].as_str().unwrap().to_owned(),
                    n["owned"].as_u64().unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = owned.iter().map(|(name, _)| name.as_str()).collect();
        let contacts = contacts_per_account(kamailio);
        let shared = names == expected
            && owned.iter().map(|(_, n)| n).sum::<u64>() == total
            && owned.iter().all(|(_, n)| n.abs_diff(share) <= 1);
        let one_each = accounts.iter().all(|a| contacts.get(a) == Some(&1))
            && contacts.len() == accounts.len();
        if shared && one_each {
            return;
        }
        if std::time::Instant::now() >= deadline {
            // Counts and one example, not 3,000 accounts' worth of output.
            let missing = accounts
                .iter()
                .filter(|a| !contacts.contains_key(*a))
                .count();
            let several = contacts.values().filter(|n| **n > 1).count();
            let example = contacts
                .iter()
                .find(|(_, n)| **n > 1)
                .map(|(account, _)| kamailio.bindings(account));
            panic!(
                "not shared: {owned:?}; {missing} accounts without a contact, {several} with \
                 several, e.g. {example:#?}"
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A Kamailio with `count` accounts `{prefix}NN` (password `{account}-pw`), and their names.
fn kamailio_with_accounts(prefix: &str, count: usize) -> (Kamailio, Vec<String>) {
    let accounts: Vec<String> = (0..count).map(|n| format!("{prefix}{n:02}")).collect();
    let mut options = KamailioOptions::default();
    for account in &accounts {
        options = options.subscriber(account, &format!("{account}-pw"));
    }
    (Kamailio::start(options), accounts)
}

/// Node `a` of a cluster (its environment `env`), with the engine on and a registration of
/// each of `accounts` at `kamailio` created through it.
fn first_node_registering(
    env: Vec<(String, String)>,
    kamailio: &Kamailio,
    accounts: &[String],
) -> (Server, crate::common::Tenant) {
    let a = Server::start_with(ServerOptions {
        env,
        engine: true,
        ..ServerOptions::default()
    });
    let tenant = a.tenant();
    for account in accounts {
        create_user_registration(&a, &tenant, account, kamailio.addr(Transport::Udp));
    }
    (a, tenant)
}

/// A node of a cluster on `database` with short leases (renewed every second, lasting 3 s).
fn cluster_node_env(database: &str, node: &str) -> Vec<(String, String)> {
    vec![
        ("TRUNKLINE_DATABASE_URL".to_owned(), database.to_owned()),
        ("TRUNKLINE_NODE_ID".to_owned(), node.to_owned()),
        ("TRUNKLINE_CLUSTER_RENEW_SECS".to_owned(), "1".to_owned()),
        ("TRUNKLINE_CLUSTER_LEASE_SECS".to_owned(), "3".to_owned()),
    ]
}

#[test]
fn nodes_share_registrations_by_leases_and_take_over_from_one_that_stops() {
    let (kamailio, accounts) = kamailio_with_accounts("acct", 3000);
    let database = test_postgres::PgServer::shared().database();
    let env = |node: &str| cluster_node_env(&database, node);
    let (a, tenant) = first_node_registering(env("node-a"), &kamailio, &accounts);
    wait_until_shared(&a, &tenant, &kamailio, &["node-a"], &accounts);

    // Two more nodes join: a third each, one contact per account all along the way's end.
    let b = a.start_beside(env("node-b"));
    let mut c = a.start_beside(env("node-c"));
    wait_until_shared(
        &a,
        &tenant,
        &kamailio,
        &["node-a", "node-b", "node-c"],
        &accounts,
    );

    // One stops cleanly: its contacts are unregistered, the others take its registrations.
    assert!(c.terminate().success());
    wait_until_shared(&b, &tenant, &kamailio, &["node-a", "node-b"], &accounts);

    // One is killed: once its leases expire, the last one takes everything over, and its
    // first REGISTERs remove the dead node's contacts: one contact per account again.
    let mut b = b;
    b.kill();
    wait_until_shared(&a, &tenant, &kamailio, &["node-a"], &accounts);
    assert!(a.logs().iter().all(|line| !line.contains("panicked")));
}

#[test]
fn a_node_paused_past_its_leases_registers_none_of_them_when_it_wakes() {
    let (kamailio, accounts) = kamailio_with_accounts("pause", 20);
    let database = test_postgres::PgServer::shared().database();
    let env = |node: &str| {
        let mut env = cluster_node_env(&database, node);
        // 10 s bindings, refreshed after 5 s: some fall due while b is frozen.
        env.push((
            "TRUNKLINE_OUTBOUND_EXPIRES_SECS".to_owned(),
            "10".to_owned(),
        ));
        env.push((
            "TRUNKLINE_OUTBOUND_MIN_REFRESH_SECS".to_owned(),
            "1".to_owned(),
        ));
        env
    };
    let (a, tenant) = first_node_registering(env("node-a"), &kamailio, &accounts);
    let b = a.start_beside(env("node-b"));
    wait_until_shared(&a, &tenant, &kamailio, &["node-a", "node-b"], &accounts);
    let b_contacts: Vec<String> = kamailio
        .all_bindings()
        .into_iter()
        .filter(|binding| binding.contact.contains(&b.sip.unwrap().port().to_string()))
        .map(|binding| binding.username)
        .collect();
    assert_eq!(b_contacts.len(), 10, "b holds half");

    // b freezes well past its leases (and past its refreshes): a takes everything over.
    b.pause();
    wait_until_shared(&a, &tenant, &kamailio, &["node-a"], &accounts);
    // Time passing is the point here (nothing runs in a frozen process to wait for): b's
    // refresh timers fall due while it sleeps, and fire the moment it wakes.
    std::thread::sleep(Duration::from_secs(6));
    b.resume();
    // Awake, b finds its leases gone and sends nothing for them before it claims its share
    // again (a hands half over, as to any node joining): never two contacts for one account.
    let until = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < until {
        let contacts = contacts_per_account(&kamailio);
        assert!(
            contacts.values().all(|n| *n == 1),
            "two nodes' contacts for one account: {contacts:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(b
        .logs()
        .iter()
        .any(|line| line.contains("leases lost; registering them no more")));
    wait_until_shared(&a, &tenant, &kamailio, &["node-a", "node-b"], &accounts);
}
