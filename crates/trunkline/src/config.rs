//! Configuration: defaults < TOML file (`--config`) < `TRUNKLINE_*` environment < command line,
//! with the key names of the CLI/config spec. Unknown keys in the file and malformed values are
//! startup errors naming the key. Keys for capabilities that are not built yet are accepted and
//! kept so that a configuration written for a later version still starts.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::Deserialize;

/// Environment variable prefix; `TRUNKLINE_SIP_TLS_LISTEN` is `sip.tls_listen`.
const ENV_PREFIX: &str = "TRUNKLINE_";
const SECTIONS: &[&str] = &[
    "sip",
    "registrar",
    "outbound",
    "pacing",
    "dasha",
    "cluster",
    "events",
];
const TOP_LEVEL: &[&str] = &[
    "listen",
    "data_dir",
    "database_url",
    "public_url",
    "master_key",
    "master_key_previous",
    "admin_token",
    "log",
    "node_id",
];

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<String>,
    pub public_url: Option<String>,
    /// Base64 of 32 bytes; else the key file `{data_dir}/master.key`.
    pub master_key: Option<SecretString>,
    /// Earlier master keys (base64 of 32 bytes each, comma-separated): they still open what
    /// they sealed, never seal; `trunkline rekey` re-seals everything with the current key.
    pub master_key_previous: Option<SecretString>,
    pub admin_token: Option<SecretString>,
    pub log: String,
    pub node_id: Option<String>,
    pub sip: SipConfig,
    pub registrar: RegistrarConfig,
    pub outbound: OutboundConfig,
    pub pacing: PacingConfig,
    pub dasha: DashaConfig,
    pub cluster: ClusterConfig,
    pub events: EventsConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            public_url: None,
            master_key: None,
            master_key_previous: None,
            admin_token: None,
            log: "info".to_owned(),
            node_id: None,
            sip: SipConfig::default(),
            registrar: RegistrarConfig::default(),
            outbound: OutboundConfig::default(),
            pacing: PacingConfig::default(),
            dasha: DashaConfig::default(),
            cluster: ClusterConfig::default(),
            events: EventsConfig::default(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SipConfig {
    pub listen: SocketAddr,
    pub tls_listen: Option<SocketAddr>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub public_addr: Option<String>,
    pub domain: String,
    pub nonce_secret: Option<SecretString>,
    pub nonce_lifetime_secs: u64,
    /// Comma-separated DNS server addresses for SRV/A/AAAA; unset: the system's.
    pub dns_servers: Option<String>,
    pub challenge_algorithms: String,
}

impl Default for SipConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 5060)),
            tls_listen: None,
            tls_cert: None,
            tls_key: None,
            ca_file: None,
            public_addr: None,
            domain: "sip.localhost".to_owned(),
            nonce_secret: None,
            nonce_lifetime_secs: 300,
            dns_servers: None,
            challenge_algorithms: "SHA-256,MD5".to_owned(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RegistrarConfig {
    pub enabled: bool,
    pub min_expires: u32,
    pub default_expires: u32,
    pub max_expires: u32,
    pub max_contacts: u32,
    pub auth_fail_limit: u32,
    pub auth_fail_window_secs: u64,
    pub auth_fail_cooldown_secs: u64,
}

impl Default for RegistrarConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            min_expires: 60,
            default_expires: 3600,
            max_expires: 3600,
            max_contacts: 10,
            auth_fail_limit: 20,
            auth_fail_window_secs: 60,
            auth_fail_cooldown_secs: 120,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Run the SIP engine; `false` makes a control-plane-only node.
    pub enabled: bool,
    pub ramp_per_sec: u32,
    pub unregister_on_shutdown: bool,
    pub shutdown_deadline_secs: u64,
    pub failed_auth_retry_secs: u64,
    pub backoff_base_secs: u64,
    pub backoff_cap_secs: u64,
    /// Expiry asked for in each REGISTER (the registrar may grant less).
    pub expires_secs: u32,
    /// Never refresh sooner than this after the previous REGISTER, whatever was granted.
    pub min_refresh_secs: u64,
    /// A registrar's `Retry-After` is honoured up to this.
    pub retry_after_cap_secs: u64,
    /// A `Min-Expires` above this is a failure, not a registration that long.
    pub max_expires_secs: u32,
    /// How often the engine compares its registrations with the store.
    pub reconcile_secs: u64,
    /// CIDR networks (comma-separated) no REGISTER is sent to, checked after DNS resolution.
    pub deny_networks: String,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ramp_per_sec: 200,
            unregister_on_shutdown: true,
            shutdown_deadline_secs: 10,
            failed_auth_retry_secs: 3600,
            backoff_base_secs: 2,
            backoff_cap_secs: 300,
            expires_secs: 3600,
            min_refresh_secs: 30,
            retry_after_cap_secs: 3600,
            max_expires_secs: 86_400,
            reconcile_secs: 60,
            deny_networks: "169.254.0.0/16,fe80::/10".to_owned(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PacingConfig {
    pub redis_url: Option<SecretString>,
    pub fail_open: bool,
    pub burst: u32,
}

impl Default for PacingConfig {
    fn default() -> Self {
        Self {
            redis_url: None,
            fail_open: false,
            burst: 1,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DashaConfig {
    pub reveal_auth_password: bool,
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    pub lease_secs: u64,
    pub renew_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            lease_secs: 15,
            renew_secs: 5,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// Events are kept this long for stream resumes and polling.
    pub retention_secs: u64,
    /// How long a webhook delivery is retried before the endpoint is disabled.
    pub webhook_retry_secs: u64,
}

impl Default for EventsConfig {
    fn default() -> Self {
        Self {
            retention_secs: 86_400,
            webhook_retry_secs: 86_400,
        }
    }
}

/// Values given on the command line, which win over everything else.
#[derive(Debug, Default)]
pub struct Overrides {
    pub data_dir: Option<PathBuf>,
    pub database_url: Option<String>,
    pub listen: Option<String>,
}

impl Config {
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Self, Box<figment::Error>> {
        let mut figment = Figment::new();
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        // figment hands over the name in its original case (`LOG`, `SIP_TLS_LISTEN`).
        figment = figment.merge(
            Env::prefixed(ENV_PREFIX).filter_map(|key| env_key(&key.as_str().to_ascii_lowercase())),
        );
        if let Some(dir) = &overrides.data_dir {
            figment = figment.merge(("data_dir", dir));
        }
        if let Some(url) = &overrides.database_url {
            figment = figment.merge(("database_url", url));
        }
        if let Some(listen) = &overrides.listen {
            figment = figment.merge(("listen", listen));
        }
        figment.extract().map_err(Box::new)
    }

    /// Settings of the SIP listeners; an unparsable `sip.dns_servers` or
    /// `outbound.deny_networks` is an error naming it.
    pub fn transport_settings(
        &self,
    ) -> Result<trunkline_sip::transport::TransportSettings, String> {
        let dns_servers = match &self.sip.dns_servers {
            None => Vec::new(),
            Some(list) => list
                .split(',')
                .map(|item| item.trim().parse::<std::net::IpAddr>())
                .collect::<Result<_, _>>()
                .map_err(|err| {
                    format!("sip.dns_servers: {err} (expected IP addresses separated by commas)")
                })?,
        };
        Ok(trunkline_sip::transport::TransportSettings {
            listen: self.sip.listen,
            tls_listen: self.sip.tls_listen,
            tls_cert: self.sip.tls_cert.clone(),
            tls_key: self.sip.tls_key.clone(),
            ca_file: self.sip.ca_file.clone(),
            public_addr: self.sip.public_addr.clone(),
            dns_servers,
            deny_networks: trunkline_sip::target::parse_networks(&self.outbound.deny_networks)
                .map_err(|err| format!("outbound.deny_networks: {err}"))?,
            // Never a destination (its port is set again once bound, for `listen` port 0).
            http_listen: Some(self.listen),
        })
    }

    /// This node's id: `node_id` (1–64 of letters, digits, `.`, `_`, `-`), else a random one
    /// per start.
    pub fn node_id(&self) -> Result<String, String> {
        match &self.node_id {
            None => Ok(format!("node-{:08x}", rand::random::<u32>())),
            Some(id)
                if (1..=64).contains(&id.len())
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) =>
            {
                Ok(id.clone())
            }
            Some(_) => Err("node_id must be 1-64 letters, digits, '.', '_' or '-'".to_owned()),
        }
    }

    /// Settings of call pacing; `pacing.burst` must be 1–1,000,000 and `pacing.redis_url` a
    /// `redis://` or `unix://` URL (checked when the pacer is built).
    pub fn pacing_settings(&self) -> Result<trunkline_pacing::PacingSettings, String> {
        let p = &self.pacing;
        if !(1..=1_000_000).contains(&p.burst) {
            return Err("pacing.burst must be between 1 and 1000000".to_owned());
        }
        Ok(trunkline_pacing::PacingSettings {
            redis_url: p.redis_url.clone(),
            fail_open: p.fail_open,
            burst: p.burst,
        })
    }

    /// Settings of the inbound registrar; `sip.challenge_algorithms` must name MD5 and/or
    /// SHA-256, and the expiry bounds must be ordered.
    pub fn registrar_settings(&self) -> Result<trunkline_sip::RegistrarSettings, String> {
        use trunkline_sip::digest::Algorithm;
        let mut challenge_algorithms = Vec::new();
        for name in self.sip.challenge_algorithms.split(',') {
            let algorithm = Algorithm::parse(Some(name.trim()))
                .filter(|algorithm| matches!(algorithm, Algorithm::Md5 | Algorithm::Sha256))
                .ok_or_else(|| {
                    format!(
                        "sip.challenge_algorithms: {:?} is not MD5 or SHA-256",
                        name.trim()
                    )
                })?;
            if !challenge_algorithms.contains(&algorithm) {
                challenge_algorithms.push(algorithm);
            }
        }
        let r = &self.registrar;
        if !(r.min_expires <= r.default_expires && r.default_expires <= r.max_expires) {
            return Err(
                "registrar: min_expires <= default_expires <= max_expires must hold".to_owned(),
            );
        }
        if r.max_contacts == 0 {
            return Err("registrar.max_contacts must be at least 1".to_owned());
        }
        let secs = |value: u64| std::time::Duration::from_secs(value.min(365 * 24 * 3600));
        Ok(trunkline_sip::RegistrarSettings {
            domain: self.sip.domain.clone(),
            nonce_secret: self.sip.nonce_secret.clone(),
            nonce_lifetime: secs(self.sip.nonce_lifetime_secs.max(1)),
            challenge_algorithms,
            limits: trunkline_sip::registrar::bindings::Limits {
                min_expires: r.min_expires,
                default_expires: r.default_expires,
                max_expires: r.max_expires,
                max_contacts: r.max_contacts as usize,
            },
            throttle: trunkline_sip::registrar::throttle::ThrottleSettings {
                limit: r.auth_fail_limit,
                window: secs(r.auth_fail_window_secs.max(1)),
                cooldown: secs(r.auth_fail_cooldown_secs),
            },
        })
    }

    /// Settings of the outbound registration engine. Durations are held to a year (a timer
    /// further out than that is a typo, and would overflow the clock).
    pub fn engine_settings(&self) -> trunkline_sip::EngineSettings {
        let secs = |value: u64| std::time::Duration::from_secs(value.min(365 * 24 * 3600));
        trunkline_sip::EngineSettings {
            ramp_per_sec: self.outbound.ramp_per_sec,
            unregister_on_shutdown: self.outbound.unregister_on_shutdown,
            shutdown_deadline: secs(self.outbound.shutdown_deadline_secs),
            failed_auth_retry: secs(self.outbound.failed_auth_retry_secs),
            backoff_base: secs(self.outbound.backoff_base_secs),
            backoff_cap: secs(self.outbound.backoff_cap_secs),
            requested_expires: self.outbound.expires_secs,
            bounds: trunkline_sip::policy::Bounds {
                min_refresh: secs(self.outbound.min_refresh_secs),
                retry_after_cap: secs(self.outbound.retry_after_cap_secs),
                max_expires: self.outbound.max_expires_secs,
            },
            reconcile_interval: secs(self.outbound.reconcile_secs.max(1)),
        }
    }

    /// Settings of the webhook deliverer: `events.webhook_retry_secs` (1 s to a year), the
    /// destinations `outbound.deny_networks` refuses, and holds as long as the cluster's
    /// leases (`cluster.lease_secs`, renewed every `cluster.renew_secs`).
    pub fn webhook_settings(
        &self,
        node_id: &str,
    ) -> Result<trunkline_webhooks::DelivererSettings, String> {
        let secs = |value: u64| std::time::Duration::from_secs(value.clamp(1, 365 * 24 * 3600));
        Ok(trunkline_webhooks::DelivererSettings {
            node_id: node_id.to_owned(),
            retry_window: secs(self.events.webhook_retry_secs),
            deny_networks: trunkline_sip::target::parse_networks(&self.outbound.deny_networks)
                .map_err(|err| format!("outbound.deny_networks: {err}"))?,
            hold: secs(self.cluster.lease_secs.max(2)),
            claim_every: secs(self.cluster.renew_secs),
        })
    }

    /// `database_url`, defaulting to the SQLite file in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("trunkline.db").display()))
    }
}

/// Maps a lower-cased, prefix-stripped variable name to its config key; `None` ignores it.
fn env_key(name: &str) -> Option<figment::value::Uncased<'static>> {
    if TOP_LEVEL.contains(&name) {
        return Some(name.to_owned().into());
    }
    SECTIONS.iter().find_map(|section| {
        let rest = name.strip_prefix(section)?.strip_prefix('_')?;
        Some(format!("{section}.{rest}").into())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_ids_are_checked_or_made_up() {
        let mut config = Config::default();
        assert!(config.node_id().unwrap().starts_with("node-"));
        config.node_id = Some("eu-west.1_a".into());
        assert_eq!(config.node_id().unwrap(), "eu-west.1_a");
        for bad in ["", "a b", "a|b", "x=y", &"n".repeat(65)] {
            config.node_id = Some(bad.to_owned());
            assert!(config.node_id().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pacing_settings_bound_the_burst() {
        let mut config = Config::default();
        let settings = config.pacing_settings().unwrap();
        assert_eq!((settings.burst, settings.fail_open), (1, false));
        assert!(settings.redis_url.is_none());
        for bad in [0, 1_000_001] {
            config.pacing.burst = bad;
            let err = config.pacing_settings().unwrap_err();
            assert!(err.contains("pacing.burst"), "{err}");
        }
        config.pacing.burst = 1_000_000;
        assert_eq!(config.pacing_settings().unwrap().burst, 1_000_000);
    }

    #[test]
    fn registrar_settings_check_algorithms_and_expiry_order() {
        let mut config = Config::default();
        let settings = config.registrar_settings().unwrap();
        assert_eq!(
            settings.challenge_algorithms,
            [
                trunkline_sip::digest::Algorithm::Sha256,
                trunkline_sip::digest::Algorithm::Md5
            ]
        );
        config.sip.challenge_algorithms = " md5 ".into();
        let settings = config.registrar_settings().unwrap();
        assert_eq!(
            settings.challenge_algorithms,
            [trunkline_sip::digest::Algorithm::Md5]
        );
        for bad in ["SHA-512-256", "MD5-sess", "", "MD5,"] {
            config.sip.challenge_algorithms = bad.into();
            let err = config.registrar_settings().expect_err(bad);
            assert!(err.contains("sip.challenge_algorithms"), "{err}");
        }
        config.sip.challenge_algorithms = "MD5".into();
        config.registrar.min_expires = 4000;
        assert!(config
            .registrar_settings()
            .unwrap_err()
            .contains("min_expires"));
        config.registrar.min_expires = 60;
        config.registrar.max_contacts = 0;
        assert!(config
            .registrar_settings()
            .unwrap_err()
            .contains("max_contacts"));
    }

    #[test]
    fn env_names_map_to_nested_keys() {
        assert_eq!(
            env_key("sip_tls_listen").unwrap().as_str(),
            "sip.tls_listen"
        );
        assert_eq!(
            env_key("outbound_backoff_cap_secs").unwrap().as_str(),
            "outbound.backoff_cap_secs"
        );
        assert_eq!(env_key("data_dir").unwrap().as_str(), "data_dir");
        assert!(env_key("something_else").is_none());
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's test jail fixes the closure's error type
    fn precedence_and_errors_name_the_key() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "t.toml",
                "listen = \"127.0.0.1:1\"\nlog = \"debug\"\n[sip]\ndomain = \"from.file\"\n",
            )?;
            jail.set_env("TRUNKLINE_LOG", "warn");
            let overrides = Overrides {
                listen: Some("127.0.0.1:2".into()),
                ..Overrides::default()
            };
            let config = Config::load(Some(Path::new("t.toml")), &overrides).unwrap();
            assert_eq!(config.listen.port(), 2);
            assert_eq!(config.log, "warn");
            assert_eq!(config.sip.domain, "from.file");
            assert_eq!(config.registrar.min_expires, 60);

            jail.create_file("bad.toml", "[sip]\nlisen = \"x\"\n")?;
            let err = Config::load(Some(Path::new("bad.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("lisen"), "{err}");
            jail.create_file("bad2.toml", "[registrar]\nmin_expires = \"soon\"\n")?;
            let err =
                Config::load(Some(Path::new("bad2.toml")), &Overrides::default()).unwrap_err();
            assert!(err.to_string().contains("min_expires"), "{err}");
            Ok(())
        });
    }
}
