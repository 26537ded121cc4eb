//! The registrations list (`GET /v1/registrations`): every outbound registration of a tenant,
//! both kinds, each in the state `GET /v1/registrations/{id}` shows (the engine's live board
//! over the stored status), counted by state over the whole tenant, filtered by state and by
//! the user or number, failing ones first, one window at a time.
//!
//! The counts span every registration, so a list reads every registration of the tenant (one
//! compact row each, no secret) and decides in memory: counting, filtering and ordering by
//! the live state cannot be pushed into SQL without disagreeing with the board, which holds
//! states the table gets only later (a first attempt's `registering`, for up to a minute).

use uuid::Uuid;

use super::status::{RegistrationKind, RegistrationView};
use super::{window, PageLimits, Services};
use crate::error::{FieldErrors, ServiceError};
use crate::ids::{AccountId, Timestamp};
use crate::model::{RegistrationSource, RegistrationState};
use crate::page::Window;

/// `?limit=` of the list: 100 unless asked, at most 1000.
pub const REGISTRATION_LIST_LIMITS: PageLimits = PageLimits {
    default: 100,
    max: 1000,
};

/// Longest `?q=` (characters).
pub const QUERY_MAX_CHARS: usize = 100;

/// Which states a list keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    Is(RegistrationState),
    /// Every `failed_*` state.
    Failed,
}

impl StateFilter {
    /// A state's name, or `failed`.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "failed" {
            return Some(Self::Failed);
        }
        RegistrationState::parse(text).map(Self::Is)
    }

    fn keeps(self, state: RegistrationState) -> bool {
        match self {
            Self::Is(wanted) => state == wanted,
            Self::Failed => state.is_failed(),
        }
    }
}

/// What a list keeps: a state (or every failed one), and a piece of the user or number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistrationFilter {
    pub state: Option<StateFilter>,
    /// Lower case; matched case-insensitively anywhere in the user or number.
    pub query: Option<String>,
}

impl RegistrationFilter {
    /// Checks `?state=` and `?q=` (an empty `q` keeps everything), naming the parameter.
    pub fn parse(state: Option<&str>, query: Option<&str>) -> Result<Self, ServiceError> {
        let mut errors = FieldErrors::new();
        let state = state.and_then(|text| {
            let parsed = StateFilter::parse(text);
            if parsed.is_none() {
                let names: Vec<&str> = RegistrationState::ALL.iter().map(|s| s.as_str()).collect();
                errors.add(
                    "state",
                    format!(
                        "\"{}\" is not a state: use failed or one of {}.",
                        text.chars().take(40).collect::<String>(),
                        names.join(", ")
                    ),
                );
            }
            parsed
        });
        let query = query.filter(|q| !q.is_empty()).and_then(|q| {
            if q.chars().count() > QUERY_MAX_CHARS {
                errors.add(
                    "q",
                    format!("Ensure this value has at most {QUERY_MAX_CHARS} characters."),
                );
                return None;
            }
            Some(q.to_lowercase())
        });
        errors.into_result()?;
        Ok(Self { state, query })
    }

    fn keeps(&self, state: RegistrationState, user: &str) -> bool {
        self.state.is_none_or(|filter| filter.keeps(state))
            && self
                .query
                .as_deref()
                .is_none_or(|q| user.to_lowercase().contains(q))
    }
}

/// How many registrations are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateCounts([u64; RegistrationState::ALL.len()]);

impl StateCounts {
    pub fn get(&self, state: RegistrationState) -> u64 {
        self.0[Self::slot(state)]
    }

    fn add(&mut self, state: RegistrationState) {
        self.0[Self::slot(state)] += 1;
    }

    fn slot(state: RegistrationState) -> usize {
        RegistrationState::ALL
            .iter()
            .position(|s| *s == state)
            .expect("every state is in ALL")
    }
}

/// One registration of the list: its status as `GET /v1/registrations/{id}` shows it, and what
/// a person looks for it by.
#[derive(Debug, Clone)]
pub struct ListedRegistration {
    pub view: RegistrationView,
    /// The Ultravox `username`, or the phone number.
    pub user: String,
    pub auth_user: Option<String>,
    /// Ultravox `proxy`, or the number's trunk's registrar (`domain`, else `server`).
    pub registrar: String,
    /// A phone number's trunk (Dasha `credentialsId`).
    pub trunk_id: Option<Uuid>,
    pub created_at: Timestamp,
}

/// One window of the list, and the figures of the whole.
#[derive(Debug, Clone)]
pub struct RegistrationList {
    pub items: Vec<ListedRegistration>,
    /// Over every registration of the tenant, whatever the filter.
    pub counts: StateCounts,
    /// How many the filter keeps (the window is cut from these).
    pub matching: u64,
}

impl Services {
    /// The tenant's outbound registrations of both kinds that `filter` keeps, failing ones
    /// first, then by (created time, id); the `window` of them, and the counts by state.
    pub async fn registration_list(
        &self,
        tenant: &AccountId,
        filter: &RegistrationFilter,
        window: Window,
    ) -> Result<RegistrationList, ServiceError> {
        let summaries = self.store.registration_summaries(tenant).await?;
        let mut counts = StateCounts::default();
        let mut kept = Vec::new();
        for summary in summaries {
            let status = self.live.overlay(summary.id, summary.status);
            let state = RegistrationView::shown_state(summary.registering, status.as_ref());
            counts.add(state);
            if !filter.keeps(state, &summary.aor_user) {
                continue;
            }
            let (kind, id) = match summary.source {
                RegistrationSource::Ultravox => {
                    (RegistrationKind::Ultravox, summary.id.to_string())
                }
                RegistrationSource::DashaNumber => {
                    (RegistrationKind::Dasha, summary.aor_user.clone())
                }
            };
            kept.push(ListedRegistration {
                view: RegistrationView {
                    id,
                    key: summary.id,
                    kind,
                    state,
                    status,
                },
                user: summary.aor_user,
                auth_user: summary.auth_user,
                registrar: summary.registrar,
                trunk_id: summary.trunk_id,
                created_at: summary.created_at,
            });
        }
        kept.sort_by_key(|r| (!r.view.state.is_failed(), r.created_at, r.view.key));
        let matching = kept.len() as u64;
        let items = kept
            .into_iter()
            .skip(usize::try_from(window.offset).unwrap_or(usize::MAX))
            .take(window.limit as usize)
            .collect();
        Ok(RegistrationList {
            items,
            counts,
            matching,
        })
    }
}

/// Checks `?offset=` and `?limit=` of the list.
pub fn registration_list_window(
    offset: Option<i64>,
    limit: Option<i64>,
) -> Result<Window, ServiceError> {
    window("offset", offset, "limit", limit, REGISTRATION_LIST_LIMITS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_filters_name_a_state_or_every_failed_one() {
        assert_eq!(StateFilter::parse("failed"), Some(StateFilter::Failed));
        assert_eq!(
            StateFilter::parse("failed_auth"),
            Some(StateFilter::Is(RegistrationState::FailedAuth))
        );
        assert_eq!(StateFilter::parse("Failed"), None);
        assert_eq!(StateFilter::parse(""), None);
        assert!(StateFilter::Failed.keeps(RegistrationState::FailedTimeout));
        assert!(!StateFilter::Failed.keeps(RegistrationState::Registered));
        assert!(!StateFilter::Is(RegistrationState::Pending).keeps(RegistrationState::Registering));
    }

    #[test]
    fn filters_are_checked_and_the_query_matches_any_case() {
        let filter = RegistrationFilter::parse(Some("registered"), Some("ALI")).unwrap();
        assert!(filter.keeps(RegistrationState::Registered, "Alice"));
        assert!(!filter.keeps(RegistrationState::Registered, "bob"));
        assert!(!filter.keeps(RegistrationState::Pending, "alice"));
        let everything = RegistrationFilter::parse(None, Some("")).unwrap();
        assert_eq!(everything, RegistrationFilter::default());
        assert!(everything.keeps(RegistrationState::Disabled, "+14155550123"));

        let long = "x".repeat(QUERY_MAX_CHARS + 1);
        let Err(ServiceError::Validation(errors)) =
            RegistrationFilter::parse(Some("nope"), Some(&long))
        else {
            panic!("accepted a bad state and an over-long query")
        };
        let fields: Vec<&String> = errors.iter().map(|(field, _)| field).collect();
        assert_eq!(fields, ["q", "state"]);
    }

    #[test]
    fn counts_are_per_state() {
        let mut counts = StateCounts::default();
        counts.add(RegistrationState::FailedAuth);
        counts.add(RegistrationState::FailedAuth);
        counts.add(RegistrationState::Registered);
        assert_eq!(counts.get(RegistrationState::FailedAuth), 2);
        assert_eq!(counts.get(RegistrationState::Registered), 1);
        assert_eq!(counts.get(RegistrationState::Pending), 0);
    }
}
