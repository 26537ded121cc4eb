//! The web console at `GET /ui/`: one HTML page, one framework-free ES module, a style sheet
//! and an icon (`crates/trunkline-api/console/`), embedded in the binary at build time, so it
//! works offline and needs no Node toolchain to build or test. The page signs in with an API
//! key (kept in the tab's `sessionStorage`) and calls the same HTTP API any client does; this
//! module serves bytes and reads nothing else.
//!
//! Every answer carries a Content-Security-Policy allowing this origin only (no inline script
//! or style, no other host), `nosniff`, no referrer and no framing. Assets are revalidated on
//! each load (`Cache-Control: no-cache` with an ETag): they change only with the binary, and a
//! 304 costs one round trip.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH, LOCATION,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::dialect::own::Own;
use crate::dialect::Dialect;
use crate::error::ApiError;

/// Where the console lives.
pub const PATH: &str = "/ui/";

/// This origin only: the module, the style sheet, the icon, and `fetch` to the API.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

const INDEX: &str = "index.html";

const ASSETS: [Asset; 4] = [
    Asset {
        name: INDEX,
        content_type: "text/html; charset=utf-8",
        body: include_bytes!("../console/index.html"),
    },
    Asset {
        name: "console.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../console/console.js"),
    },
    Asset {
        name: "console.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../console/console.css"),
    },
    Asset {
        name: "icon.svg",
        content_type: "image/svg+xml",
        body: include_bytes!("../console/icon.svg"),
    },
];

/// Each asset's ETag, in the order of [`ASSETS`]: a digest of its bytes.
static ETAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    ASSETS
        .iter()
        .map(|asset| {
            let digest = Sha256::digest(asset.body);
            let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
            HeaderValue::from_str(&format!("\"{tag}\"")).expect("base64 is a valid header")
        })
        .collect()
});

/// `/ui` (to `/ui/`), the page at `/ui/`, and its assets at `/ui/{name}`.
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/ui", get(|| async { redirect_to_page() }))
        .route(PATH, get(|headers: HeaderMap| async move { serve(INDEX, &headers) }))
        .route(
            "/ui/{name}",
            get(|Path(name): Path<String>, headers: HeaderMap| async move {
                serve(&name, &headers)
            }),
        )
}

fn redirect_to_page() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(LOCATION, HeaderValue::from_static(PATH))],
    )
        .into_response()
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(slot) = ASSETS.iter().position(|asset| asset.name == name) else {
        return Own::render(ApiError::not_found());
    };
    let asset = &ASSETS[slot];
    let etag = &ETAGS[slot];
    let fresh = request
        .get(IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == etag));
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(CONTENT_TYPE, HeaderValue::from_static(asset.content_type))],
            asset.body,
        )
            .into_response()
    };
    let headers = response.headers_mut();
    headers.insert(ETAG, etag.clone());
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_only_assets_that_are_served() {
        let page = std::str::from_utf8(ASSETS[0].body).unwrap();
        for reference in ["console.js", "console.css", "icon.svg"] {
            assert!(page.contains(&format!("\"{reference}\"")), "{reference}");
        }
        for asset in &ASSETS {
            let text = std::str::from_utf8(asset.body).unwrap();
            assert!(
                !text.contains("http://") || asset.name == "icon.svg",
                "{}",
                asset.name
            );
            assert!(!text.contains("https://"), "{}: no other host", asset.name);
        }
    }

    #[test]
    fn an_etag_that_matches_is_a_304_with_the_same_headers() {
        let first = serve("console.js", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[ETAG].clone();
        let mut request = HeaderMap::new();
        request.insert(IF_NONE_MATCH, etag.clone());
        let again = serve("console.js", &request);
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        assert_eq!(again.headers()[ETAG], etag);
        assert_eq!(again.headers()[CONTENT_SECURITY_POLICY], POLICY);
        assert_eq!(
            serve("nope.js", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
