//! Where the sealing key comes from: `master_key` (base64 of 32 bytes, from config or
//! `TRUNKLINE_MASTER_KEY`), else the key file `{data_dir}/master.key`, created with mode 0600
//! on first use (an existing one that group or others may read is warned about, not changed);
//! and the earlier keys of a rotation, `master_key_previous` (`TRUNKLINE_MASTER_KEY_PREVIOUS`),
//! which only open what they sealed until `trunkline rekey` has re-sealed it.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use anyhow::{bail, Context};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use trunkline_store::MasterKey;
use zeroize::Zeroizing;

const KEY_FILE: &str = "master.key";

pub fn load(configured: Option<&SecretString>, data_dir: &Path) -> anyhow::Result<MasterKey> {
    if let Some(encoded) = configured {
        return decode(encoded.expose_secret()).context("master_key must be base64 of 32 bytes");
    }
    let path = data_dir.join(KEY_FILE);
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(mut file) => {
            let key = MasterKey::generate();
            let encoded = Zeroizing::new(
                base64::engine::general_purpose::STANDARD.encode(key.expose_bytes()),
            );
            file.write_all(encoded.as_bytes())
                .and_then(|()| file.write_all(b"\n"))
                .and_then(|()| file.sync_all())
                .with_context(|| format!("cannot write {}", path.display()))?;
            tracing::info!(path = %path.display(), key_id = %key.id(), "created master key file");
            Ok(key)
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            let mode = fs::metadata(&path)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = %format_args!("{mode:o}"), "master key file is readable by others");
            }
            let text = Zeroizing::new(
                fs::read_to_string(&path)
                    .with_context(|| format!("cannot read {}", path.display()))?,
            );
            decode(text.trim())
                .with_context(|| format!("{} must hold base64 of 32 bytes", path.display()))
        }
        Err(err) => Err(err).with_context(|| format!("cannot create {}", path.display())),
    }
}

/// The keys of `master_key_previous`: base64 of 32 bytes each, separated by commas (blank
/// items ignored). An error names the item by position, never its text.
pub fn load_previous(configured: Option<&SecretString>) -> anyhow::Result<Vec<MasterKey>> {
    let Some(list) = configured else {
        return Ok(Vec::new());
    };
    let items: Vec<&str> = list
        .expose_secret()
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .collect();
    items
        .iter()
        .enumerate()
        .map(|(n, item)| {
            decode(item).with_context(|| {
                format!(
                    "master_key_previous: key {} of {} must be base64 of 32 bytes",
                    n + 1,
                    items.len()
                )
            })
        })
        .collect()
}

fn decode(encoded: &str) -> anyhow::Result<MasterKey> {
    let bytes = Zeroizing::new(base64::engine::general_purpose::STANDARD.decode(encoded.trim())?);
    let Ok(array) = <[u8; 32]>::try_from(bytes.as_slice()) else {
        bail!("decoded to {} bytes, expected 32", bytes.len());
    };
    Ok(MasterKey::from_bytes(array))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_the_key_file_once_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let first = load(None, dir.path()).unwrap();
        let mode = fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let second = load(None, dir.path()).unwrap();
        assert_eq!(first.id(), second.id());
    }

    #[test]
    fn previous_keys_are_a_comma_separated_list_checked_item_by_item() {
        let encode = |byte: u8| base64::engine::general_purpose::STANDARD.encode([byte; 32]);
        assert!(load_previous(None).unwrap().is_empty());
        assert!(load_previous(Some(&SecretString::from(" , ")))
            .unwrap()
            .is_empty());
        let list = SecretString::from(format!("{}, {} ,", encode(1), encode(2)));
        let ids: Vec<String> = load_previous(Some(&list))
            .unwrap()
            .iter()
            .map(MasterKey::id)
            .collect();
        assert_eq!(
            ids,
            [
                MasterKey::from_bytes([1; 32]).id(),
                MasterKey::from_bytes([2; 32]).id()
            ]
        );
        let bad = SecretString::from(format!("{},c2hvcnQ=", encode(1)));
        let err = format!("{:#}", load_previous(Some(&bad)).unwrap_err());
        assert!(err.contains("master_key_previous: key 2 of 2"), "{err}");
        assert!(
            !err.contains("c2hvcnQ"),
            "the key text is not echoed: {err}"
        );
    }

    #[test]
    fn configured_key_wins_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let encoded =
            SecretString::from(base64::engine::general_purpose::STANDARD.encode([9u8; 32]));
        let key = load(Some(&encoded), dir.path()).unwrap();
        assert_eq!(key.id(), MasterKey::from_bytes([9; 32]).id());
        assert!(!dir.path().join(KEY_FILE).exists());
        assert!(load(Some(&SecretString::from("c2hvcnQ=")), dir.path()).is_err());
    }
}
