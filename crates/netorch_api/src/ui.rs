//! `/ui`: the operator's dashboard, compiled into the binary (no CDN, no build step).
//!
//! Every page is the same small HTML shell; `ui/app.js` reads the path and draws the page from
//! the API itself (the same JSON any client gets), follows a deployment live through its event
//! stream, and sends the API token kept in the browser's session storage. It is a module: the
//! alert views (firing counts on the fleet page, a deployment's open alerts with acknowledge and
//! silence, alerting nodes marked) are `ui/alerts.js`, and the fleet's health on every page
//! (worker loops alive, the database answering and writable, and what to do when not) is
//! `ui/health.js`, the telemetry charts `ui/charts.js`, the fleet page `ui/fleet.js` and the
//! deployment and node pages `ui/deployment.js` (a node's provisioner runs `ui/runs.js`, a
//! deployment's self-healing `ui/healing.js`); it
//! imports them. The pages are
//! rendered in the browser rather than on the server because the token lives there: a server
//! rendering would need a cookie session beside the bearer keys. The shell carries the closed
//! lists the pages offer (node states, methods) as the enums name them, so that the
//! JavaScript holds no copy. Charts are uPlot (MIT, vendored under `assets/uplot` with its
//! licence).

use crate::http::choice::Choice;
use crate::http::operation::{Access, Files, Operation, Resource};
use actix_web::{HttpRequest, HttpResponse};
use std::sync::LazyLock;
use utoipa::OpenApi;

/// The dashboard's page and its files and their part of the document: `/ui` is served like
/// every documented operation; the pages below it (each the same shell) and the pages'
/// script, style sheet and chart library are files.
pub(crate) const RESOURCE: Resource = Resource {
    files: &[
        Files {
            path: "/ui/deployments/{deployment_id}",
            handler: |r| r.to(page),
        },
        Files {
            path: "/ui/deployments/{deployment_id}/nodes/{node_id}",
            handler: |r| r.to(page),
        },
        Files {
            path: "/ui/assets/{asset}",
            handler: |r| r.to(asset),
        },
        // Last: any other page below `/ui` is the shell with 404, and the page says "not
        // found" with a way back, where the API's JSON 404 showed before.
        Files {
            path: "/ui/{page:.*}",
            handler: |r| r.to(missing),
        },
    ],
    ..Resource::new(
        &[Operation::get("/ui", Access::Open, |r| r.to(page))],
        Doc::openapi,
    )
};

#[derive(OpenApi)]
#[openapi(paths(page))]
struct Doc;

/// Scripts and styles come only from this server; no inline script runs. uPlot sizes its
/// canvases through element styles, which `style-src` does not govern.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
    object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

static SHELL: LazyLock<String> = LazyLock::new(|| {
    let join = |names: Vec<&str>| names.join(" ");
    format!(
        r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>netorch</title>
<link rel="icon" href="/ui/assets/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/ui/assets/uPlot.min.css">
<link rel="stylesheet" href="/ui/assets/app.css">
{preloads}<script src="/ui/assets/app.js" type="module"></script>
</head>
<body data-node-states="{states}" data-statuses="{statuses}" data-sorts="{sorts}" data-methods="{methods}" data-not-plain="{not_plain}" data-version="{version}">
<a class="skip" href="#main">Skip to content</a>
<header class="top">
<nav aria-label="Main"><a href="/ui" class="brand">netorch</a> <a href="/docs">API</a></nav>
<form id="token-form" class="token" autocomplete="off">
<label for="token">API token</label>
<input id="token" name="token" type="password" placeholder="ntk_…" spellcheck="false">
<button type="submit">Use</button>
<button type="button" id="token-forget">Forget</button>
<span id="whoami" role="status"></span>
</form>
</header>
<div id="health" class="health" role="status" aria-live="polite"></div>
<div id="errors" role="alert" aria-live="assertive"></div>
<main id="main" tabindex="-1"><p class="muted">Loading…</p></main>
<noscript>This dashboard needs JavaScript; the API is at <a href="/docs">/docs</a>.</noscript>
</body>
</html>
"##,
        states = join(netorch_domain::NodeState::names()),
        statuses = join(netorch_domain::DeploymentStatus::names()),
        sorts = join(netorch_domain::DeploymentSort::names()),
        methods = join(netorch_analytics::Method::names()),
        not_plain = crate::http::input::not_plain_ranges("").join(" "),
        version = env!("CARGO_PKG_VERSION"),
        preloads = module_preloads(),
    )
});

fn with_security_headers(
    mut response: actix_web::HttpResponseBuilder,
) -> actix_web::HttpResponseBuilder {
    response
        .insert_header(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"));
    response
}

/// Operator's dashboard
///
/// The web dashboard: the fleet, and from it each deployment and node (`/ui/deployments/{id}`,
/// `/ui/deployments/{id}/nodes/{node}`), served without the internet. The page itself needs no
/// key; with keys on, it asks for a token and sends it with every API request.
#[utoipa::path(
    get, path = "/ui", tag = "service",
    responses((status = 200, description = "The dashboard's page", content_type = "text/html"))
)]
pub async fn page() -> HttpResponse {
    with_security_headers(HttpResponse::Ok())
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(SHELL.as_str())
}

/// A page below `/ui` the dashboard does not have: the shell (which says "not found" and links
/// back to the fleet), answered 404.
pub async fn missing() -> HttpResponse {
    with_security_headers(HttpResponse::NotFound())
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-cache"))
        .body(SHELL.as_str())
}

/// What an asset is, which says how it is served and whether the shell preloads it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// One of the pages' ES modules: preloaded by the shell, so that the browser fetches every
    /// module at once instead of one level of imports after another.
    Module,
    /// A classic script (the chart library, which `charts.js` loads when it first draws).
    Script,
    /// A style sheet.
    Style,
    /// The icon.
    Svg,
}

impl Kind {
    const fn content_type(self) -> &'static str {
        match self {
            Kind::Module | Kind::Script => "application/javascript; charset=utf-8",
            Kind::Style => "text/css; charset=utf-8",
            Kind::Svg => "image/svg+xml",
        }
    }
}

/// The pages' modules, style sheet and chart library, by the name they are served under.
const ASSETS: &[(&str, &[u8], Kind)] = &[
    (
        "app.js",
        include_bytes!("../assets/ui/app.js"),
        Kind::Module,
    ),
    (
        "alerts.js",
        include_bytes!("../assets/ui/alerts.js"),
        Kind::Module,
    ),
    (
        "health.js",
        include_bytes!("../assets/ui/health.js"),
        Kind::Module,
    ),
    (
        "charts.js",
        include_bytes!("../assets/ui/charts.js"),
        Kind::Module,
    ),
    (
        "fleet.js",
        include_bytes!("../assets/ui/fleet.js"),
        Kind::Module,
    ),
    (
        "runs.js",
        include_bytes!("../assets/ui/runs.js"),
        Kind::Module,
    ),
    (
        "healing.js",
        include_bytes!("../assets/ui/healing.js"),
        Kind::Module,
    ),
    (
        "deployment.js",
        include_bytes!("../assets/ui/deployment.js"),
        Kind::Module,
    ),
    (
        "app.css",
        include_bytes!("../assets/ui/app.css"),
        Kind::Style,
    ),
    (
        "favicon.svg",
        include_bytes!("../assets/ui/favicon.svg"),
        Kind::Svg,
    ),
    (
        "uPlot.iife.min.js",
        include_bytes!("../assets/uplot/uPlot.iife.min.js"),
        Kind::Script,
    ),
    (
        "uPlot.min.css",
        include_bytes!("../assets/uplot/uPlot.min.css"),
        Kind::Style,
    ),
];

/// The shell's `modulepreload` links: every module but `app.js`, which the shell loads itself.
fn module_preloads() -> String {
    ASSETS
        .iter()
        .filter(|(name, _, kind)| *kind == Kind::Module && *name != "app.js")
        .map(|(name, ..)| format!("<link rel=\"modulepreload\" href=\"/ui/assets/{name}\">\n"))
        .collect()
}

/// One of [`ASSETS`].
pub async fn asset(req: HttpRequest) -> HttpResponse {
    let wanted = req.match_info().get("asset");
    let Some(&(_, body, kind)) = ASSETS.iter().find(|(name, ..)| Some(*name) == wanted) else {
        return HttpResponse::NotFound().json(crate::http::error::ErrorDetail::new("Not Found"));
    };
    // Revalidated on every load, so that an upgraded server never runs an old script; on
    // loopback or a LAN the 60 KB cost nothing noticeable.
    with_security_headers(HttpResponse::Ok())
        .content_type(kind.content_type())
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_module_a_page_imports_is_served_and_preloaded() {
        let mut imported = 0;
        for (name, body, kind) in ASSETS {
            if *kind != Kind::Module {
                continue;
            }
            let preload = format!(r#"<link rel="modulepreload" href="/ui/assets/{name}">"#);
            assert_eq!(SHELL.contains(&preload), *name != "app.js", "{name}");
            let source = std::str::from_utf8(body).expect("modules are UTF-8");
            for import in source.split(" from \"/ui/assets/").skip(1) {
                let target = import.split('"').next().expect("a quoted path");
                assert!(
                    ASSETS
                        .iter()
                        .any(|(n, _, k)| *n == target && *k == Kind::Module),
                    "{name} imports {target}, which is not a served module"
                );
                imported += 1;
            }
        }
        assert!(imported >= 9, "{imported} imports found");
    }

    #[test]
    fn the_shell_names_the_states_and_methods_as_the_enums_do() {
        assert!(SHELL.contains(
            r#"data-node-states="PENDING PROVISIONING CONFIGURING RUNNING FAILED DECOMMISSIONING""#
        ));
        assert!(SHELL.contains(r#"data-methods="robust zscore""#));
        assert!(SHELL.contains(r#"data-statuses="PROGRESSING PAUSED COMPLETE DEGRADED""#));
        assert!(SHELL.contains(r#"data-sorts="newest oldest name most_failed""#));
        assert!(
            !SHELL.contains("<script>"),
            "no inline script (the CSP forbids it)"
        );
    }
}
