//! The registrar's bindings in memory, and the rules of RFC 3261 §10.3 that change them: what
//! one REGISTER does to a credential's contacts, as a list of [`BindingChange`]s to store.
//!
//! The memory is this node's working copy; the store is written before a REGISTER is answered
//! (see [`super::writer`]) and read back at start, so bindings survive a restart.

use std::collections::HashMap;
use std::sync::Arc;

use trunkline_core::model::{BindingChange, InboundBinding, Transport};
use trunkline_core::{AccountId, Timestamp};
use uuid::Uuid;

use super::request::{Contacts, RegisterRequest};

/// `registrar.*` expiry and contact limits.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub min_expires: u32,
    pub default_expires: u32,
    pub max_expires: u32,
    pub max_contacts: usize,
}

/// Why a REGISTER changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// 423, with `Min-Expires`.
    IntervalTooBrief(u32),
    /// 400 with this phrase.
    Bad(&'static str),
}

/// Who sent the REGISTER and how.
#[derive(Debug, Clone)]
pub struct Origin {
    pub source: String,
    pub transport: Transport,
}

#[derive(Default)]
pub struct Bindings {
    by_credential: HashMap<Uuid, Vec<Arc<InboundBinding>>>,
    count: usize,
}

const MICROS: i64 = 1_000_000;

impl Bindings {
    /// Replaces everything (start).
    pub fn load(&mut self, all: Vec<InboundBinding>) {
        self.by_credential.clear();
        self.count = 0;
        for binding in all {
            self.count += 1;
            self.by_credential
                .entry(binding.credential_id)
                .or_default()
                .push(Arc::new(binding));
        }
    }

    /// Replaces one credential's bindings (after a write that failed, from the store).
    pub fn reset_credential(&mut self, credential: Uuid, bindings: Vec<InboundBinding>) {
        self.remove_credential(credential);
        if !bindings.is_empty() {
            self.count += bindings.len();
            self.by_credential
                .insert(credential, bindings.into_iter().map(Arc::new).collect());
        }
    }

    /// Forgets a credential's bindings (it was disabled or deleted); how many went.
    pub fn remove_credential(&mut self, credential: Uuid) -> usize {
        let removed = self
            .by_credential
            .remove(&credential)
            .map_or(0, |list| list.len());
        self.count -= removed;
        removed
    }

    /// Drops what expired by `now`; how many went.
    pub fn sweep(&mut self, now: Timestamp) -> usize {
        let before = self.count;
        self.by_credential.retain(|_, list| {
            list.retain(|binding| binding.expires_at > now);
            !list.is_empty()
        });
        self.count = self.by_credential.values().map(Vec::len).sum();
        before - self.count
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// A credential's live contacts with their remaining seconds (the 200's Contact list).
    pub fn current(&self, credential: Uuid, now: Timestamp) -> Vec<(String, u32)> {
        self.by_credential
            .get(&credential)
            .into_iter()
            .flatten()
            .filter(|binding| binding.expires_at > now)
            .map(|binding| {
                let micros = binding.expires_at.micros() - now.micros();
                let secs = (micros + MICROS - 1) / MICROS;
                (
                    binding.contact.clone(),
                    u32::try_from(secs).unwrap_or(u32::MAX),
                )
            })
            .collect()
    }

    /// Applies one authenticated REGISTER of `credential` (RFC 3261 §10.3 steps 5–8) and
    /// returns what to store; nothing changes when it is refused.
    pub fn apply(
        &mut self,
        tenant: &AccountId,
        credential: Uuid,
        request: &RegisterRequest,
        origin: &Origin,
        limits: &Limits,
        now: Timestamp,
    ) -> Result<Vec<BindingChange>, Refusal> {
        let entries = match &request.contacts {
            Contacts::Query => return Ok(Vec::new()),
            Contacts::All => {
                if request.expires != Some(0) {
                    return Err(Refusal::Bad("Contact * Needs Expires 0"));
                }
                self.remove_credential(credential);
                return Ok(vec![BindingChange::RemoveAll {
                    credential_id: credential,
                }]);
            }
            Contacts::List(entries) => entries,
        };
        // Every contact's expiry first: one too brief refuses the whole request.
        let mut wanted = Vec::with_capacity(entries.len());
        for entry in entries {
            let asked = entry
                .expires
                .or(request.expires)
                .unwrap_or(limits.default_expires);
            if asked != 0 && asked < limits.min_expires {
                return Err(Refusal::IntervalTooBrief(limits.min_expires));
            }
            wanted.push((entry.uri.as_str(), asked.min(limits.max_expires)));
        }

        let list = self.by_credential.entry(credential).or_default();
        let before = list.len();
        list.retain(|binding| binding.expires_at > now);
        let mut changes = Vec::new();
        for (uri, expires) in wanted {
            let existing = list.iter().position(|binding| binding.contact == uri);
            if let Some(index) = existing {
                let binding = &list[index];
                // Same Call-ID, CSeq not above: out of order (step 7); leave this contact.
                if binding.call_id == request.call_id && request.cseq <= binding.cseq {
                    continue;
                }
            }
            if expires == 0 {
                if let Some(index) = existing {
                    list.remove(index);
                    changes.push(BindingChange::Remove {
                        credential_id: credential,
                        contact: uri.to_owned(),
                    });
                }
                continue;
            }
            let registered_at = existing.map_or(now, |index| list[index].registered_at);
            let binding = InboundBinding {
                tenant: tenant.clone(),
                credential_id: credential,
                contact: uri.to_owned(),
                source: origin.source.clone(),
                transport: origin.transport,
                user_agent: request.user_agent.clone(),
                call_id: request.call_id.clone(),
                cseq: request.cseq,
                expires_at: Timestamp::from_micros(
                    now.micros().saturating_add(i64::from(expires) * MICROS),
                ),
                registered_at,
            };
            changes.push(BindingChange::Put(binding.clone()));
            match existing {
                Some(index) => list[index] = Arc::new(binding),
                None => list.push(Arc::new(binding)),
            }
        }
        // Over the limit: the oldest registrations make room (a stable sort keeps the order
        // of one request's own contacts).
        if list.len() > limits.max_contacts {
            list.sort_by_key(|binding| binding.registered_at);
            let surplus = list.len() - limits.max_contacts;
            for binding in list.drain(..surplus) {
                changes.retain(
                    |change| !matches!(change, BindingChange::Put(put) if put.contact == binding.contact),
                );
                changes.push(BindingChange::Remove {
                    credential_id: credential,
                    contact: binding.contact.clone(),
                });
            }
        }
        let after = list.len();
        if list.is_empty() {
            self.by_credential.remove(&credential);
        }
        self.count = self.count + after - before;
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registrar::request::ContactEntry;

    const LIMITS: Limits = Limits {
        min_expires: 60,
        default_expires: 3600,
        max_expires: 3600,
        max_contacts: 2,
    };

    fn register(
        call_id: &str,
        cseq: u32,
        contacts: &[(&str, Option<u32>)],
        expires: Option<u32>,
    ) -> RegisterRequest {
        RegisterRequest {
            user: "alice".into(),
            domain: "ma_abcdefghij.sip.localhost".into(),
            call_id: call_id.into(),
            cseq,
            contacts: Contacts::List(
                contacts
                    .iter()
                    .map(|(uri, expires)| ContactEntry {
                        uri: (*uri).into(),
                        expires: *expires,
                    })
                    .collect(),
            ),
            expires,
            authorizations: Vec::new(),
            user_agent: None,
        }
    }

    fn origin() -> Origin {
        Origin {
            source: "udp:192.0.2.1:5060".into(),
            transport: Transport::Udp,
        }
    }

    fn tenant() -> AccountId {
        AccountId::parse("MA_ABCDEFGHIJ").unwrap()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_micros(secs * MICROS)
    }

    #[test]
    fn expiry_defaults_clamps_and_refuses_too_brief() {
        let mut bindings = Bindings::default();
        let id = Uuid::new_v4();
        let refused = bindings.apply(
            &tenant(),
            id,
            &register("c", 1, &[("sip:a@192.0.2.1", Some(30))], None),
            &origin(),
            &LIMITS,
            at(0),
        );
        assert_eq!(refused, Err(Refusal::IntervalTooBrief(60)));
        assert!(bindings.is_empty());
        bindings
            .apply(
                &tenant(),
                id,
                &register(
                    "c",
                    2,
                    &[("sip:a@192.0.2.1", None), ("sip:a@192.0.2.2", Some(99_999))],
                    None,
                ),
                &origin(),
                &LIMITS,
                at(0),
            )
            .unwrap();
        assert_eq!(
            bindings.current(id, at(0)),
            [
                ("sip:a@192.0.2.1".to_owned(), 3600),
                ("sip:a@192.0.2.2".to_owned(), 3600)
            ]
        );
        assert_eq!(bindings.current(id, at(1000))[0].1, 2600);
        assert_eq!(bindings.sweep(at(3600)), 2);
        assert!(bindings.is_empty());
    }

    #[test]
    fn expires_zero_removes_one_and_star_removes_all() {
        let mut bindings = Bindings::default();
        let id = Uuid::new_v4();
        bindings
            .apply(
                &tenant(),
                id,
                &register(
                    "c",
                    1,
                    &[("sip:a@192.0.2.1", None), ("sip:a@192.0.2.2", None)],
                    Some(600),
                ),
                &origin(),
                &LIMITS,
                at(0),
            )
            .unwrap();
        let changes = bindings
            .apply(
                &tenant(),
                id,
                &register("c", 2, &[("sip:a@192.0.2.1", Some(0))], Some(600)),
                &origin(),
                &LIMITS,
                at(1),
            )
            .unwrap();
        assert!(
            matches!(&changes[..], [BindingChange::Remove { contact, .. }] if contact == "sip:a@192.0.2.1")
        );
        assert_eq!(bindings.len(), 1);
        let mut star = register("c", 3, &[], Some(5));
        star.contacts = Contacts::All;
        assert_eq!(
            bindings.apply(&tenant(), id, &star, &origin(), &LIMITS, at(2)),
            Err(Refusal::Bad("Contact * Needs Expires 0"))
        );
        star.expires = Some(0);
        assert_eq!(
            bindings
                .apply(&tenant(), id, &star, &origin(), &LIMITS, at(2))
                .unwrap(),
            [BindingChange::RemoveAll { credential_id: id }]
        );
        assert!(bindings.is_empty());
    }

    #[test]
    fn out_of_order_cseq_is_ignored_and_another_call_id_replaces() {
        let mut bindings = Bindings::default();
        let id = Uuid::new_v4();
        bindings
            .apply(
                &tenant(),
                id,
                &register("c", 5, &[("sip:a@192.0.2.1", Some(600))], None),
                &origin(),
                &LIMITS,
                at(0),
            )
            .unwrap();
        let late = bindings
            .apply(
                &tenant(),
                id,
                &register("c", 4, &[("sip:a@192.0.2.1", Some(0))], None),
                &origin(),
                &LIMITS,
                at(1),
            )
            .unwrap();
        assert!(late.is_empty());
        assert_eq!(bindings.len(), 1);
        let other = bindings
            .apply(
                &tenant(),
                id,
                &register("d", 1, &[("sip:a@192.0.2.1", Some(900))], None),
                &origin(),
                &LIMITS,
                at(2),
            )
            .unwrap();
        assert_eq!(other.len(), 1);
        assert_eq!(bindings.current(id, at(2))[0].1, 900);
    }

    #[test]
    fn the_oldest_contact_makes_room_past_the_limit() {
        let mut bindings = Bindings::default();
        let id = Uuid::new_v4();
        for (i, uri) in ["sip:a@192.0.2.1", "sip:a@192.0.2.2", "sip:a@192.0.2.3"]
            .iter()
            .enumerate()
        {
            bindings
                .apply(
                    &tenant(),
                    id,
                    &register(&format!("c{i}"), 1, &[(uri, None)], None),
                    &origin(),
                    &LIMITS,
                    at(i as i64),
                )
                .unwrap();
        }
        let left: Vec<_> = bindings
            .current(id, at(3))
            .into_iter()
            .map(|(uri, _)| uri)
            .collect();
        assert_eq!(left, ["sip:a@192.0.2.2", "sip:a@192.0.2.3"]);
        assert_eq!(bindings.len(), 2);
    }
}
