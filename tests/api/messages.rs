//! Submitting, listing, reading and cancelling messages.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{assert_problem, spawn_app};

#[tokio::test]
async fn a_message_is_stored_normalised_with_its_encoding_and_segments() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/messages",
            &app.admin_token,
            json!({"to": "7123-4567", "text": "Información de su préstamo"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let m: Value = res.json().await.unwrap();
    assert_eq!(
        location,
        format!("/v1/messages/{}", m["id"].as_i64().unwrap())
    );
    assert_eq!(m["to"], "+59171234567");
    assert_eq!(m["status"], "pending");
    assert_eq!(m["encoding"], "ucs2");
    assert_eq!(m["segments"], 1);
    assert_eq!(m["channel"], "api");
    assert_eq!(m["created_by"], "admin");
    assert_eq!(m["attempts"], 0);
    assert_eq!(m["ref"].as_str().unwrap().len(), 32);
    assert!(m["created_at"].as_str().unwrap().ends_with("-04:00"));
    for field in ["load_id", "sent_at", "delivered_at", "error"] {
        assert!(m[field].is_null(), "{field}");
    }

    let stored: Value = app.get_json(&location, &app.admin_token).await;
    assert_eq!(stored, m);
}

#[tokio::test]
async fn long_texts_count_their_segments() {
    let app = spawn_app().await;
    let m = app
        .send(
            json!({"to": "71234567", "text": "a".repeat(161)}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        (m["encoding"].as_str(), m["segments"].as_i64()),
        (Some("gsm7"), Some(2))
    );
}

#[tokio::test]
async fn a_repeated_ref_returns_the_stored_message_or_a_conflict() {
    let app = spawn_app().await;
    let body = json!({"to": "71234567", "text": "Su cuota vence hoy", "ref": "cuota-1"});
    let first = app.send(body.clone(), StatusCode::CREATED).await;
    let again = app.send(body, StatusCode::OK).await;
    assert_eq!(first["id"], again["id"]);

    let res = app
        .post(
            "/v1/messages",
            &app.admin_token,
            json!({"to": "71234567", "text": "Otro texto", "ref": "cuota-1"}),
        )
        .await;
    let problem = assert_problem(res, StatusCode::CONFLICT, Some("ref")).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(&first["id"].as_i64().unwrap().to_string())
    );

    let page: Value = app.get_json("/v1/messages", &app.admin_token).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn concurrent_retries_of_one_ref_store_it_once() {
    let app = spawn_app().await;
    let body = json!({"to": "71234567", "text": "una vez", "ref": "retry-storm"});
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let request = app
                .client
                .post(app.url("/v1/messages"))
                .bearer_auth(&app.admin_token)
                .json(&body);
            tokio::spawn(async move {
                let res = request.send().await.unwrap();
                let status = res.status();
                (status, res.json::<Value>().await.unwrap())
            })
        })
        .collect();

    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for task in tasks {
        let (status, message) = task.await.unwrap();
        match status {
            StatusCode::CREATED => created += 1,
            other => assert_eq!(other, StatusCode::OK),
        }
        ids.insert(message["id"].as_i64().unwrap());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
}

#[tokio::test]
async fn a_scheduled_message_keeps_its_time() {
    let app = spawn_app().await;
    let at = (chrono::Utc::now() + chrono::Duration::days(1)).format("%Y-%m-%dT10:00:00");
    let m = app
        .send(
            json!({"to": "71234567", "text": "mañana", "send_at": at.to_string()}),
            StatusCode::CREATED,
        )
        .await;
    assert_eq!(
        m["scheduled_for"].as_str().unwrap(),
        format!("{at}.000-04:00")
    );
}

#[tokio::test]
async fn a_batch_answers_per_item_and_stores_the_good_ones() {
    let app = spawn_app().await;
    app.send(
        json!({"to": "71234567", "text": "previo", "ref": "dup"}),
        StatusCode::CREATED,
    )
    .await;
    let res = app
        .post(
            "/v1/messages/batch",
            &app.admin_token,
            json!({"messages": [
                {"to": "71234567", "text": "uno", "ref": "b-1"},
                {"to": "no es", "text": "dos"},
                {"to": "71234567", "text": "previo", "ref": "dup"},
                {"to": "71234567", "text": "distinto", "ref": "dup"},
                {"to": 71234567, "text": "tipo"},
                {"to": "+51912345678", "text": "Perú"}
            ]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["accepted"], 3);
    assert_eq!(body["rejected"], 3);
    let items = body["items"].as_array().unwrap();
    let statuses: Vec<&str> = items
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "created", "rejected", "existing", "rejected", "rejected", "created"
        ]
    );
    assert_eq!(items[1]["problem"]["field"], "messages[1].to");
    assert_eq!(items[3]["problem"]["field"], "messages[3].ref");
    assert_eq!(items[3]["problem"]["status"], 409);
    assert_eq!(items[4]["problem"]["field"], "messages[4].to");
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["index"], i);
    }

    let page: Value = app
        .get_json("/v1/messages?phone=%2B51912345678", &app.admin_token)
        .await;
    assert_eq!(page["items"][0]["channel"], "batch");
    assert_eq!(page["items"][0]["id"], items[5]["id"]);
}

#[tokio::test]
async fn a_batch_over_the_limit_or_empty_is_refused_whole() {
    let app = spawn_app().await;
    let one = json!({"to": "71234567", "text": "x"});
    let many: Vec<Value> = std::iter::repeat_n(one, pregonero::api::MAX_BATCH + 1).collect();
    let res = app
        .post(
            "/v1/messages/batch",
            &app.admin_token,
            json!({ "messages": many }),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("messages")).await;
    let res = app
        .post(
            "/v1/messages/batch",
            &app.admin_token,
            json!({ "messages": [] }),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("messages")).await;

    let page: Value = app.get_json("/v1/messages", &app.admin_token).await;
    assert!(page["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn a_full_batch_is_stored_in_one_go() {
    let app = spawn_app().await;
    let messages: Vec<Value> = (0..pregonero::api::MAX_BATCH)
        .map(|i| json!({"to": format!("7{:07}", 1_000_000 + i), "text": format!("mensaje {i}")}))
        .collect();
    let res = app
        .post(
            "/v1/messages/batch",
            &app.admin_token,
            json!({ "messages": messages }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["accepted"], pregonero::api::MAX_BATCH);

    let metrics = app
        .get("/metrics", &app.admin_token)
        .await
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(&format!(
        "pregonero_messages{{status=\"pending\"}} {}\n",
        pregonero::api::MAX_BATCH
    )));
}

#[tokio::test]
async fn listing_filters_and_pages_with_a_cursor() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let to = if i % 2 == 0 { "71234567" } else { "71234568" };
        let m = app
            .send(
                json!({"to": to, "text": format!("n{i}")}),
                StatusCode::CREATED,
            )
            .await;
        ids.push(m["id"].as_i64().unwrap());
    }
    let cancelled = &ids[4];
    app.delete(&format!("/v1/messages/{cancelled}"), &app.admin_token)
        .await;

    // Pages of two, newest first, until the cursor runs out.
    let mut seen = Vec::new();
    let mut path = "/v1/messages?limit=2".to_owned();
    loop {
        let page: Value = app.get_json(&path, &app.admin_token).await;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_i64().unwrap());
        }
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/messages?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    let newest_first: Vec<i64> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let page: Value = app
        .get_json("/v1/messages?phone=71234568", &app.admin_token)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);

    let page: Value = app
        .get_json("/v1/messages?status=cancelled", &app.admin_token)
        .await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], *cancelled);

    let page: Value = app
        .get(
            "/v1/messages?from=2020-01-01&until=2020-02-01",
            &app.admin_token,
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(page["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn bad_filters_are_named() {
    let app = spawn_app().await;
    for (query, field) in [
        ("status=lost", "status"),
        ("phone=abc", "phone"),
        ("from=ayer", "from"),
        ("limit=0", "limit"),
        ("cursor=nope", "cursor"),
        ("from=2026-02-01&until=2026-01-01", "until"),
    ] {
        let res = app
            .get(&format!("/v1/messages?{query}"), &app.admin_token)
            .await;
        assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some(field)).await;
    }
    let res = app.get("/v1/messages?limit=many", &app.admin_token).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("limit")).await;
    let res = app.get("/v1/messages?stauts=sent", &app.admin_token).await;
    assert_problem(res, StatusCode::BAD_REQUEST, Some("stauts")).await;
}

#[tokio::test]
async fn cancelling_works_before_the_modem_and_is_idempotent() {
    let app = spawn_app().await;
    let m = app
        .send(json!({"to": "71234567", "text": "x"}), StatusCode::CREATED)
        .await;
    let path = format!("/v1/messages/{}", m["id"].as_i64().unwrap());

    for _ in 0..2 {
        let res = app.delete(&path, &app.admin_token).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.json::<Value>().await.unwrap()["status"], "cancelled");
    }
    let res = app
        .delete("/v1/messages/no-such-id", &app.admin_token)
        .await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;
}

#[tokio::test]
async fn a_late_retry_of_a_stored_message_gets_its_answer() {
    let app = spawn_app().await;
    // Stored with a send_at two seconds inside the five-minute tolerance...
    let at = (chrono::Utc::now() - chrono::Duration::seconds(298)).to_rfc3339();
    let body = json!({"to": "71234567", "text": "hola", "send_at": at, "ref": "late-1"});
    let first = app.send(body.clone(), StatusCode::CREATED).await;

    // ...and retried once that time has dropped out of it: the stored message comes back, not
    // a 422 that would tempt the client to send it again under a new ref.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let again = app.send(body, StatusCode::OK).await;
    assert_eq!(again["id"], first["id"]);

    // A new message with that time is still refused.
    let res = app
        .post(
            "/v1/messages",
            &app.admin_token,
            json!({"to": "71234567", "text": "hola", "send_at": at, "ref": "late-2"}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("send_at")).await;
}

#[tokio::test]
async fn until_alone_lists_its_own_month() {
    let app = spawn_app().await;
    app.send(json!({"to": "71234567", "text": "x"}), StatusCode::CREATED)
        .await;
    let res = app
        .get("/v1/messages?until=2025-03-15", &app.admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let page: Value = res.json().await.unwrap();
    assert!(page["items"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn control_characters_in_filters_and_names_are_refused_not_failed() {
    let app = spawn_app().await;
    let res = app.get("/v1/messages?load_id=%00", &app.admin_token).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("load_id")).await;

    let res = app
        .client
        .post(app.url("/v1/auth/login"))
        .json(&json!({"username": "ad\u{0}min", "password": "whatever-it-is"}))
        .send()
        .await
        .unwrap();
    assert_problem(res, StatusCode::UNAUTHORIZED, None).await;

    let res = app
        .post(
            "/v1/api-keys",
            &app.admin_token,
            json!({"name": "bad\u{0}name", "scopes": ["reports"]}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("name")).await;
}
