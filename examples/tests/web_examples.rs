//! The web examples as users run them: real processes on a free port, a
//! real HTTP client, real signals.
#![cfg(unix)]

use std::collections::BTreeSet;
use std::process::Command;
use std::time::Instant;

use host_test::{HostProcess, NO_HANG, example};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

/// An example serving on a port the system chose, and a client for it.
struct Served {
    process: HostProcess,
    client: Client,
}

/// Starts the example `name` on `127.0.0.1:0` with `args`, and reads the
/// address it listens on from its `Now listening on: http://ADDR` line.
fn serve(name: &str, args: &[&str]) -> Served {
    let mut command = Command::new(example(name));
    command
        .arg("--web.urls=127.0.0.1:0")
        .args(args)
        .env_remove("RUST_LOG");
    let mut process = HostProcess::spawn(command);
    const LISTENING: &str = "Now listening on: http://";
    process.wait_for(LISTENING);
    let line = process
        .lines()
        .iter()
        .find(|line| line.contains(LISTENING))
        .unwrap();
    let address = line[line.find(LISTENING).unwrap() + LISTENING.len()..]
        .split_whitespace()
        .next()
        .unwrap();
    let client = Client::new(format!("http://{address}"));
    Served { process, client }
}

/// A response, collected: its status, headers and JSON body.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header: {self:?}"))
            .to_str()
            .unwrap()
    }
}

/// A blocking client over reqwest: the tests drive processes synchronously.
struct Client {
    base: String,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl Client {
    fn new(base: String) -> Self {
        Self {
            base,
            http: reqwest::Client::builder().timeout(NO_HANG).build().unwrap(),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn get(&self, path: &str) -> Reply {
        self.send(self.http.get(format!("{}{path}", self.base)))
    }

    fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
    }

    fn post_text(&self, path: &str, body: &str) -> Reply {
        self.send(
            self.http
                .post(format!("{}{path}", self.base))
                .body(body.to_owned()),
        )
    }

    fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        self.runtime.block_on(async {
            let response = request.send().await.unwrap();
            let status = response.status();
            let headers = response.headers().clone();
            let text = response.text().await.unwrap();
            let body = serde_json::from_str(&text)
                .unwrap_or_else(|error| panic!("not JSON ({error}): {status} {text:?}"));
            Reply {
                status,
                headers,
                body,
            }
        })
    }
}

/// Sends SIGTERM and asserts a clean exit.
fn stop(process: &mut HostProcess) {
    process.signal("TERM");
    let (code, _) = process.wait_for_exit(Instant::now());
    assert_eq!(code, 0, "{}", process.output());
}

#[test]
fn web_serves_the_todo_api_beside_its_background_service_and_stops_on_sigterm() {
    let Served {
        mut process,
        client,
    } = serve("web", &[]);

    let empty = client.get("/todos");
    assert_eq!(empty.status, StatusCode::OK);
    assert_eq!(empty.body, json!([]));

    let created = client.post_json("/todos", &json!({"title": "write the docs"}));
    assert_eq!(created.status, StatusCode::CREATED, "{created:?}");
    let todo = json!({"id": 1, "title": "write the docs", "done": false});
    assert_eq!(created.body, todo);
    assert_eq!(created.header("location"), "/todos/1");
    // The middleware (the header) and the scoped `Audit` (the log line)
    // injected the same request-scoped `RequestContext`.
    let request_id = created.header("x-request-id").to_owned();
    process.wait_for(&format!("created todo 1 request_id={request_id}"));

    let found = client.get("/todos/1");
    assert_eq!(found.status, StatusCode::OK);
    assert_eq!(found.body, todo);
    assert_eq!(client.get("/todos").body, json!([todo]));

    let missing = client.get("/todos/42");
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.body, json!({"error": "todo 42 not found"}));

    let empty_title = client.post_json("/todos", &json!({"title": " "}));
    assert_eq!(empty_title.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        empty_title.body,
        json!({"error": "`title` must not be empty"})
    );
    let not_json = client.post_text("/todos", "write the docs");
    assert_eq!(not_json.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(not_json.body["error"].is_string(), "{not_json:?}");
    let not_a_number = client.get("/todos/first");
    assert_eq!(not_a_number.status, StatusCode::BAD_REQUEST);
    assert!(not_a_number.body["error"].is_string(), "{not_a_number:?}");

    // Typed options with their default; a scope per request.
    let first = client.get("/hello");
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.body["message"], "Hello, world!");
    assert_eq!(
        first.body["request_id"].to_string(),
        first.header("x-request-id")
    );
    let second = client.get("/hello");
    assert_ne!(second.body["request_id"], first.body["request_id"]);

    let ready = client.get("/health/ready");
    assert_eq!(ready.status, StatusCode::OK, "{ready:?}");
    assert_eq!(ready.body["status"], "healthy");
    assert_eq!(client.get("/health/live").status, StatusCode::OK);

    process.wait_for_times("hello from service", 2);
    let hello = process
        .lines()
        .iter()
        .find(|line| line.contains("hello from service"))
        .unwrap();
    assert!(hello.contains("WARN"), "{hello}");
    assert!(hello.contains("thread=ThreadId("), "{hello}");

    stop(&mut process);
}

#[test]
fn web_takes_its_options_from_the_command_line() {
    let Served {
        mut process,
        client,
    } = serve(
        "web",
        &[
            "--greeting.message=Hi from the command line",
            "--worker.message=tick",
            "--worker.interval=100ms",
        ],
    );
    let hello = client.get("/hello");
    assert_eq!(hello.body["message"], "Hi from the command line");
    process.wait_for_times("tick", 3);
    stop(&mut process);
}

/// The ids in `unprocessed job id=N` and `processed job id=N` lines.
fn job_outcomes(process: &HostProcess) -> (Vec<u64>, Vec<u64>) {
    fn id_after(line: &str, marker: &str) -> Option<u64> {
        let start = line.find(marker)? + marker.len();
        let digits: String = line[start..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(digits.parse().unwrap())
    }
    let (mut processed, mut unprocessed) = (Vec::new(), Vec::new());
    for line in process.lines() {
        // "unprocessed job id=" contains "processed job id=": test it first.
        if let Some(id) = id_after(line, "unprocessed job id=") {
            unprocessed.push(id);
        } else if let Some(id) = id_after(line, "processed job id=") {
            processed.push(id);
        }
    }
    (processed, unprocessed)
}

/// Every accepted id appears exactly once, processed or unprocessed, and
/// nothing else does. Returns how many were processed and unprocessed.
fn assert_each_accounted_for_once(process: &HostProcess, accepted: &[u64]) -> (usize, usize) {
    let (processed, unprocessed) = job_outcomes(process);
    let mut seen = BTreeSet::new();
    for id in processed.iter().chain(&unprocessed) {
        assert!(
            seen.insert(*id),
            "job {id} reported twice:\n{}",
            process.output()
        );
    }
    let accepted: BTreeSet<u64> = accepted.iter().copied().collect();
    assert_eq!(seen, accepted, "{}", process.output());
    (processed.len(), unprocessed.len())
}

fn post_job(client: &Client, n: usize) -> Reply {
    client.post_json("/jobs", &json!({"payload": format!("job {n}")}))
}

#[test]
fn queue_answers_429_with_retry_after_when_full() {
    let Served {
        mut process,
        client,
    } = serve("queue", &["--queue.capacity=5", "--queue.work_time=200ms"]);
    let mut accepted = Vec::new();
    let mut full = None;
    // Five wait and one is in hand: posting faster than one per 200 ms
    // fills the queue within a few requests; 100 is a bound, not a speed.
    for n in 1..=100 {
        let reply = post_job(&client, n);
        match reply.status {
            StatusCode::ACCEPTED => accepted.push(reply.body["id"].as_u64().unwrap()),
            _ => {
                full = Some(reply);
                break;
            }
        }
    }
    let full = full.expect("the queue never filled up");
    assert_eq!(full.status, StatusCode::TOO_MANY_REQUESTS, "{full:?}");
    assert_eq!(full.header("retry-after"), "1");
    assert!(
        full.body["error"].as_str().unwrap().contains("full"),
        "{full:?}"
    );
    // Ids are unique and increasing, and a refused job uses none.
    assert!(accepted.len() >= 5, "{accepted:?}");
    let expected: Vec<u64> = (1..=accepted.len() as u64).collect();
    assert_eq!(accepted, expected);

    let state = client.get("/jobs");
    assert_eq!(state.body["capacity"], 5);
    let ready = client.get("/health/ready");
    assert_eq!(ready.status, StatusCode::OK, "degraded is still ready");

    stop(&mut process);
    // The default drain (5 s) has room for the few jobs queued.
    assert_each_accounted_for_once(&process, &accepted);
}

#[test]
fn queue_accounts_for_every_accepted_job_exactly_once_at_shutdown() {
    let Served {
        mut process,
        client,
    } = serve(
        "queue",
        &[
            "--queue.capacity=100",
            "--queue.work_time=100ms",
            "--queue.drain_timeout=300ms",
        ],
    );
    let accepted: Vec<u64> = (1..=30)
        .map(|n| {
            let reply = post_job(&client, n);
            assert_eq!(reply.status, StatusCode::ACCEPTED, "{reply:?}");
            reply.body["id"].as_u64().unwrap()
        })
        .collect();
    // At least one is processed before the stop; 30 jobs of 100 ms are far
    // more than the stop's 300 ms can drain, so some are left unprocessed.
    process.wait_for("processed job id=1 ");
    stop(&mut process);
    let (processed, unprocessed) = assert_each_accounted_for_once(&process, &accepted);
    assert!(processed > 0, "{}", process.output());
    assert!(unprocessed > 0, "{}", process.output());
    assert!(
        process
            .lines()
            .iter()
            .any(|line| line.contains("stopping: draining the queue")),
        "{}",
        process.output()
    );
}

#[test]
fn queue_refuses_a_zero_capacity_with_exit_code_2() {
    let mut command = Command::new(example("queue"));
    command.arg("--queue.capacity=0").env_remove("RUST_LOG");
    let mut process = HostProcess::spawn(command);
    let (code, _) = process.wait_for_exit(Instant::now());
    assert_eq!(code, 2, "{}", process.output());
    assert!(
        process
            .output()
            .contains("`queue.capacity` must be at least 1"),
        "{}",
        process.output()
    );
}
