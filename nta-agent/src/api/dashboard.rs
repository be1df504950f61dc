//! The dashboard: `dashboard/` compiled into the binary and served at `/`.
//!
//! Every response carries a strict Content-Security-Policy: scripts and
//! styles only from these files, requests only to this origin. The
//! dashboard renders alert text with `textContent`; the policy is the second
//! line of defence should a bug ever put attacker data into markup.

use rust_embed::RustEmbed;
use warp::{
    Filter, Rejection, Reply,
    http::{HeaderValue, Response, header},
    hyper::body::Bytes,
    path::Tail,
};

#[derive(RustEmbed)]
#[folder = "../dashboard/"]
// The browser tests and their node_modules are not part of the page.
#[exclude = "tests/*"]
struct Assets;

/// The policy for every dashboard response.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// `GET /` → `index.html`; `GET /{path}` → that file of `dashboard/`.
pub(super) fn dashboard_handler() -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone
{
    // The file first, then the method: `POST /nowhere` is a 404, not a 405.
    warp::path::tail()
        .and_then(|tail: Tail| async move {
            let path = match tail.as_str() {
                "" => "index.html",
                path => path,
            };
            asset(path).ok_or_else(warp::reject::not_found)
        })
        .and(warp::get())
}

/// The response for one embedded file, or `None` if there is none.
fn asset(path: &str) -> Option<Response<Bytes>> {
    let file = Assets::get(path)?;
    let mut response = Response::new(Bytes::from(file.data.into_owned()));
    let headers = response.headers_mut();
    let mime = file.metadata.mimetype();
    let content_type = if mime.starts_with("text/") || mime.ends_with("javascript") {
        format!("{mime}; charset=utf-8")
    } else {
        mime.to_owned()
    };
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    // The files change with the binary: let the browser revalidate each
    // time (the ETag makes that a 304 when nothing changed).
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    let etag = format!(
        "\"{}\"",
        file.metadata
            .sha256_hash()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    Some(response)
}

#[cfg(test)]
mod tests {
    use warp::http::StatusCode;

    use super::*;
    use crate::api::{routes, tests::test_state};

    #[tokio::test]
    async fn the_page_and_its_files_are_served_with_the_policy() {
        let (_dir, state) = test_state();
        let routes = routes(state);
        let page = warp::test::request().path("/").reply(&routes).await;
        assert_eq!(page.status(), StatusCode::OK);
        assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
        assert_eq!(
            page.headers()["content-security-policy"],
            CONTENT_SECURITY_POLICY
        );
        let html = String::from_utf8(page.body().to_vec()).unwrap();
        assert!(html.contains("<title>"), "{html}");

        // Every file the page links to is served, scripts as JavaScript.
        for src in html
            .split(['"', '\''])
            .filter(|s| s.starts_with('/') && (s.ends_with(".js") || s.ends_with(".css")))
        {
            let file = warp::test::request().path(src).reply(&routes).await;
            assert_eq!(file.status(), StatusCode::OK, "{src}");
            let ct = file.headers()["content-type"].to_str().unwrap().to_owned();
            if src.ends_with(".js") {
                assert!(ct.contains("javascript"), "{src}: {ct}");
            } else {
                assert!(ct.starts_with("text/css"), "{src}: {ct}");
            }
        }
    }

    #[tokio::test]
    async fn charting_library_ships_with_its_licence() {
        let (_dir, state) = test_state();
        let routes = routes(state);
        for path in ["/vendor/uplot/uPlot.iife.min.js", "/vendor/uplot/LICENSE"] {
            let file = warp::test::request().path(path).reply(&routes).await;
            assert_eq!(file.status(), StatusCode::OK, "{path}");
        }
    }

    #[tokio::test]
    async fn missing_files_and_the_tests_folder_are_404() {
        let (_dir, state) = test_state();
        let routes = routes(state);
        for path in ["/nope.js", "/tests/package.json", "/../Cargo.toml"] {
            let file = warp::test::request().path(path).reply(&routes).await;
            assert_eq!(file.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }
}
