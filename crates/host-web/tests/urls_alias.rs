//! `--urls`, as in ASP.NET Core, sets `web.urls`: the server listens where
//! it says, and a bad address is named with the argument as written.

mod common;

use axum::routing::get;
use host_web::{ServerAddresses, WebHostBuilderExt};

use common::{builder, get as http_get, start, stop};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urls_on_the_command_line_sets_web_urls() {
    let mut builder = builder(&["--urls=127.0.0.1:0; http://127.0.0.1:0/"]);
    builder.web(|app| app.route("/hello", get(|| async { "hello" })));
    let (mut host, _) = start(builder).await;
    let addresses = host.services().get::<ServerAddresses>().unwrap().all();
    assert_eq!(addresses.len(), 2, "{addresses:?}");
    for address in &addresses {
        assert_eq!(http_get(*address, "/hello").await, (200, "hello".into()));
    }
    stop(&mut host).await;
}

#[test]
fn a_bad_address_in_urls_names_the_argument() {
    let mut builder = builder(&["--URLS=nowhere"]);
    builder.web(|app| app);
    let error = builder.build().expect_err("not an address");
    let text = error.to_string();
    assert_eq!(error.exit_code(), 2, "{text}");
    assert!(text.contains("`web.urls`"), "{text}");
    assert!(
        text.contains("from: command-line argument --URLS"),
        "{text}"
    );
}
