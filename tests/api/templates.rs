//! Templates: saved only when their text is sound, rendered against a sample row.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, spawn_app};

const REMINDER: &str = "Estimado <Nombre>, su cuota <numerocuota> de <moneda> <montocuota> vence \
    el <fechavencimiento>.";

async fn create(app: &TestApp, body: Value) -> Value {
    let res = app.post("/v1/templates", &app.admin_token, body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    assert!(res.headers().contains_key("location"));
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_template_is_saved_listed_changed_and_deleted() {
    let app = spawn_app().await;
    let saved = create(&app, json!({"name": "Cuota", "text": REMINDER})).await;
    assert_eq!(saved["max_length"], 140);
    assert_eq!(
        saved["tokens"],
        json!([
            "Nombre",
            "numerocuota",
            "moneda",
            "montocuota",
            "fechavencimiento"
        ])
    );
    let id = saved["id"].as_str().unwrap();

    let list = app.get_json("/v1/templates", &app.admin_token).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "Cuota");

    let res = app
        .put(
            &format!("/v1/templates/{id}"),
            &app.admin_token,
            json!({"text": "Hola <nombre>", "max_length": 160}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let changed: Value = res.json().await.unwrap();
    assert_eq!(changed["text"], "Hola <nombre>");
    assert_eq!(changed["name"], "Cuota");
    assert_eq!(changed["max_length"], 160);

    let res = app
        .delete(&format!("/v1/templates/{id}"), &app.admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = app
        .get(&format!("/v1/templates/{id}"), &app.admin_token)
        .await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;
}

#[tokio::test]
async fn a_broken_text_is_refused_with_every_problem_and_its_position() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/templates",
            &app.admin_token,
            json!({"name": "Mala", "text": "Hola <nombre, cuota > vence <fecha"}),
        )
        .await;
    let problem = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("text")).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("position 5"), "{detail}");
    assert!(detail.contains("position 28"), "{detail}");

    let res = app
        .post(
            "/v1/templates",
            &app.admin_token,
            json!({"name": "Vacía", "text": "   "}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("text")).await;

    // Nothing was stored.
    let list = app.get_json("/v1/templates", &app.admin_token).await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn names_are_unique() {
    let app = spawn_app().await;
    create(&app, json!({"name": "Cuota", "text": "Hola <nombre>"})).await;
    let res = app
        .post(
            "/v1/templates",
            &app.admin_token,
            json!({"name": "Cuota", "text": "Otra <nombre>"}),
        )
        .await;
    assert_problem(res, StatusCode::CONFLICT, Some("name")).await;
}

#[tokio::test]
async fn a_row_renders_with_the_signature_its_encoding_and_the_room_left() {
    let app = spawn_app().await;
    let res = app
        .put(
            "/v1/sending",
            &app.admin_token,
            json!({"signature": "Coop. San Martin"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let saved = create(&app, json!({"name": "Cuota", "text": REMINDER})).await;
    let path = format!("/v1/templates/{}/render", saved["id"].as_str().unwrap());
    let row = json!({"row": {
        "NOMBRE": "Ana Quispe", "NumeroCuota": "3", "moneda": "Bs", "montocuota": "150,00",
        "fechavencimiento": "05/12/2026"
    }});
    let res = app.post(&path, &app.admin_token, row).await;
    assert_eq!(res.status(), StatusCode::OK);
    let rendered: Value = res.json().await.unwrap();
    let text = "Estimado Ana Quispe, su cuota 3 de Bs 150,00 vence el 05/12/2026. \
        Coop. San Martin";
    assert_eq!(rendered["text"], text);
    assert_eq!(rendered["length"], text.chars().count());
    assert_eq!(rendered["encoding"], "gsm7");
    assert_eq!(rendered["segments"], 1);
    assert_eq!(rendered["remaining"], 160 - text.chars().count());
    assert_eq!(rendered["within_limit"], true);

    // A long name takes the message past the template's limit, and into a second segment.
    let name = "Ana María de los Ángeles Quispe Mamani, socia de la Cooperativa Central de Sucre";
    let long = json!({"row": {
        "nombre": name,
        "numerocuota": "3", "moneda": "Bs", "montocuota": "150,00",
        "fechavencimiento": "05/12/2026"
    }});
    let rendered: Value = app
        .post(&path, &app.admin_token, long)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(rendered["within_limit"], false);
    assert!(rendered["length"].as_u64().unwrap() > 140);
    // Á is not in the GSM alphabet: the message is UCS-2, 67 units a part.
    assert_eq!(rendered["encoding"], "ucs2");
    assert_eq!(rendered["segments"], 3);
}

#[tokio::test]
async fn a_row_without_a_value_for_a_token_names_it() {
    let app = spawn_app().await;
    let saved = create(&app, json!({"name": "Cuota", "text": REMINDER})).await;
    let path = format!("/v1/templates/{}/render", saved["id"].as_str().unwrap());
    let res = app
        .post(
            &path,
            &app.admin_token,
            json!({"row": {"nombre": "Ana", "numerocuota": "3", "moneda": "Bs",
                "montocuota": " ", "fechavencimiento": "05/12/2026"}}),
        )
        .await;
    assert_problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("row.montocuota"),
    )
    .await;
}

#[tokio::test]
async fn reading_needs_dashboard_and_writing_operators() {
    let app = spawn_app().await;
    let (_, reader) = app.user_with("lectora", &["dashboard"]).await;
    let res = app
        .post(
            "/v1/templates",
            &reader,
            json!({"name": "Cuota", "text": "Hola <nombre>"}),
        )
        .await;
    assert_problem(res, StatusCode::FORBIDDEN, None).await;
    let res = app.get("/v1/templates", &reader).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_test_goes_out_at_once_through_a_ready_modem() {
    let app = spawn_app().await;
    let saved = create(
        &app,
        json!({"name": "Cuota", "text": "Hola <nombre>, prueba."}),
    )
    .await;
    let path = format!("/v1/templates/{}/test", saved["id"].as_str().unwrap());

    let res = app
        .post(
            &path,
            &app.admin_token,
            json!({"to": "12", "row": {"nombre": "Ana"}}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("to")).await;

    // The simulated modem answers its init sequence moments after the start.
    let mut sent = Value::Null;
    for _ in 0..100 {
        let res = app
            .post(
                &path,
                &app.admin_token,
                json!({"to": "71234567", "row": {"nombre": "Ana"}}),
            )
            .await;
        if res.status() == StatusCode::OK {
            sent = res.json().await.unwrap();
            break;
        }
        assert_eq!(res.status(), StatusCode::CONFLICT);
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(sent["to"], "+59171234567", "{sent}");
    assert_eq!(sent["text"], "Hola Ana, prueba.");
    assert_eq!(sent["modem_id"], "modem-1");
    assert_eq!(sent["references"].as_array().unwrap().len(), 1);

    let credit = app.get_json("/v1/credit", &app.admin_token).await;
    assert_eq!(credit[0]["segments_sent"], 1, "{credit}");
}
