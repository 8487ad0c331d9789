//! Loads from real spreadsheets (.xlsx written here, .xls and .ods fixtures) and from ERP
//! databases (an SQLite file, the machine's MariaDB and PostgreSQL): previews, commits, row
//! errors, keys per reference date, deletion and the source settings.

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem, poll, spawn_app};

pub const TEMPLATE: &str = "Hola <nombre>, su cuota de Bs <monto> vence el <vence>.";

pub async fn template(app: &TestApp, text: &str, max_length: i64) -> String {
    let res = app
        .post(
            "/v1/templates",
            &app.admin_token,
            json!({"name": format!("t{}", text.len()), "text": text, "max_length": max_length}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    res.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A sheet row: name, phone (digits are written as a number), amount, due date.
type SheetRow<'a> = (&'a str, Option<&'a str>, f64, (u16, u8, u8));

/// A workbook as an ERP export looks: names, phones as numbers or text, amounts, dates.
fn workbook(rows: &[SheetRow<'_>]) -> Vec<u8> {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let date = Format::new().set_num_format("dd/mm/yyyy");
    for (c, name) in ["Nombre", "Celular", "Monto", "Vence"].iter().enumerate() {
        sheet.write_string(0, c as u16, *name).unwrap();
    }
    for (i, (name, phone, amount, (y, m, d))) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        sheet.write_string(r, 0, *name).unwrap();
        match phone {
            Some(p) if p.chars().all(|c| c.is_ascii_digit()) => {
                sheet.write_number(r, 1, p.parse::<f64>().unwrap()).unwrap();
            }
            Some(p) => {
                sheet.write_string(r, 1, *p).unwrap();
            }
            None => {}
        }
        sheet.write_number(r, 2, *amount).unwrap();
        let day = ExcelDateTime::from_ymd(*y, *m, *d).unwrap();
        sheet.write_datetime_with_format(r, 3, &day, &date).unwrap();
    }
    book.save_to_buffer().unwrap()
}

pub fn three_rows() -> Vec<u8> {
    workbook(&[
        ("Ana Quispe", Some("70123456"), 150.5, (2026, 12, 10)),
        ("Luis Mamani", Some("12"), 80.0, (2026, 12, 11)),
        ("Eva Choque", Some("+59171234567"), 1234.75, (2026, 12, 12)),
    ])
}

pub async fn upload(
    app: &TestApp,
    file: (&str, Vec<u8>),
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = Form::new().part("file", Part::bytes(file.1).file_name(file.0.to_owned()));
    for (name, value) in fields {
        form = form.text(name.to_string(), value.to_string());
    }
    app.client
        .post(app.url("/v1/loads/excel"))
        .bearer_auth(&app.admin_token)
        .multipart(form)
        .send()
        .await
        .expect("request")
}

async fn messages_of(app: &TestApp, load: &str) -> Vec<Value> {
    let page = app
        .get_json(&format!("/v1/messages?load_id={load}"), &app.admin_token)
        .await;
    page["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn an_xlsx_is_previewed_without_storing_then_committed_whole() {
    let app = spawn_app().await;
    let id = template(&app, TEMPLATE, 140).await;
    let fields = [("template_id", id.as_str()), ("phone_column", "celular")];

    let mut preview_fields = fields.to_vec();
    preview_fields.push(("dry_run", "true"));
    let res = upload(&app, ("cuotas.xlsx", three_rows()), &preview_fields).await;
    assert_eq!(res.status(), StatusCode::OK);
    let preview: Value = res.json().await.unwrap();
    assert_eq!(preview["dry_run"], true);
    assert_eq!(preview["rows_processed"], 3);
    assert_eq!(preview["messages_loaded"], 2);
    assert_eq!(preview["rows_failed"], 1);
    assert_eq!(preview["messages"][0]["to"], "+59170123456");
    assert_eq!(
        preview["messages"][0]["text"],
        "Hola Ana Quispe, su cuota de Bs 150,50 vence el 10/12/2026."
    );
    assert_eq!(preview["messages"][0]["encoding"], "gsm7");
    assert_eq!(preview["messages"][0]["segments"], 1);
    assert_eq!(
        preview["messages"][1]["text"],
        "Hola Eva Choque, su cuota de Bs 1234,75 vence el 12/12/2026."
    );
    assert_eq!(preview["row_errors"][0]["row"], 3);
    assert_eq!(preview["row_errors"][0]["column"], "Celular");
    // A preview stores nothing.
    let loads = app.get_json("/v1/loads", &app.admin_token).await;
    assert_eq!(loads["loads"], json!([]));
    let all = app.get_json("/v1/messages", &app.admin_token).await;
    assert_eq!(all["items"], json!([]));

    let res = upload(&app, ("cuotas.xlsx", three_rows()), &fields).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let load: Value = res.json().await.unwrap();
    let load_id = load["id"].as_str().unwrap().to_owned();
    assert_eq!(load["kind"], "excel");
    assert_eq!(load["status"], "committed");
    assert_eq!(load["file_name"], "cuotas.xlsx");
    assert_eq!(load["rows_processed"], 3);
    assert_eq!(load["messages_loaded"], 2);
    assert_eq!(load["rows_failed"], 1);
    assert_eq!(load["messages_by_status"], json!({"pending": 2}));
    assert!(
        load["row_errors"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("`12`")
    );

    let stored = messages_of(&app, &load_id).await;
    let mut texts: Vec<&str> = stored.iter().map(|m| m["text"].as_str().unwrap()).collect();
    texts.sort_unstable();
    assert_eq!(
        texts,
        [
            "Hola Ana Quispe, su cuota de Bs 150,50 vence el 10/12/2026.",
            "Hola Eva Choque, su cuota de Bs 1234,75 vence el 12/12/2026."
        ]
    );
    assert!(stored.iter().all(|m| m["channel"] == "load"));

    let history = app.get_json("/v1/loads", &app.admin_token).await;
    assert_eq!(history["loads"][0]["id"], load_id.as_str());
    let one = app
        .get_json(&format!("/v1/loads/{load_id}"), &app.admin_token)
        .await;
    assert_eq!(one["row_errors"].as_array().unwrap().len(), 1);
    let report = app
        .get_json(&format!("/v1/loads/{load_id}/report"), &app.admin_token)
        .await;
    assert!(report["subject"].as_str().unwrap().contains("2 mensajes"));
    assert!(
        report["text"]
            .as_str()
            .unwrap()
            .contains("fila 3 (Celular)")
    );
}

#[tokio::test]
async fn xls_and_ods_files_make_the_same_messages() {
    let app = spawn_app().await;
    let id = template(&app, TEMPLATE, 140).await;
    for name in ["cuotas.xls", "cuotas.ods"] {
        let bytes = std::fs::read(format!("tests/fixtures/{name}")).unwrap();
        let res = upload(
            &app,
            (name, bytes),
            &[
                ("template_id", &id),
                ("phone_column", "Celular"),
                ("dry_run", "1"),
            ],
        )
        .await;
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        let preview: Value = res.json().await.unwrap();
        let texts: Vec<&str> = preview["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["text"].as_str().unwrap())
            .collect();
        assert_eq!(
            texts,
            [
                "Hola Ana Quispe, su cuota de Bs 150,50 vence el 10/12/2026.",
                "Hola Eva Choque, su cuota de Bs 1234,75 vence el 12/12/2026."
            ],
            "{name}"
        );
        assert_eq!(preview["row_errors"][0]["row"], 3, "{name}");
    }
}

#[tokio::test]
async fn bad_uploads_name_the_field_and_store_nothing() {
    let app = spawn_app().await;
    let id = template(&app, TEMPLATE, 140).await;
    let book = three_rows;

    let res = upload(&app, ("c.xlsx", book()), &[("phone_column", "celular")]).await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("template_id")).await;
    let res = upload(
        &app,
        ("c.xlsx", book()),
        &[("template_id", &id), ("phone_column", "telefono")],
    )
    .await;
    let problem = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("phone_column")).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("Nombre, Celular")
    );
    let res = upload(
        &app,
        ("c.xlsx", b"PK not a zip".to_vec()),
        &[("template_id", &id), ("phone_column", "celular")],
    )
    .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("file")).await;
    let res = upload(
        &app,
        ("c.xlsx", book()),
        &[
            ("template_id", &id),
            ("phone_column", "celular"),
            ("send_date", "2020-01-01"),
        ],
    )
    .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("send_date")).await;
    let other = template(&app, "Hola <cliente>", 140).await;
    let res = upload(
        &app,
        ("c.xlsx", book()),
        &[("template_id", &other), ("phone_column", "celular")],
    )
    .await;
    let problem = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("template_id")).await;
    assert!(problem["detail"].as_str().unwrap().contains("cliente"));

    let history = app.get_json("/v1/loads", &app.admin_token).await;
    // The two uploads that started a load (the column checks run inside one) are recorded as
    // failed, with the reason; the others never started one.
    let statuses: Vec<&str> = history["loads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["failed", "failed"], "{history}");
    assert!(
        history["loads"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("template_id")
    );
    assert!(
        history["loads"][1]["error"]
            .as_str()
            .unwrap()
            .starts_with("phone_column")
    );
    let all = app.get_json("/v1/messages", &app.admin_token).await;
    assert_eq!(all["items"], json!([]));
}

#[tokio::test]
async fn rows_over_the_template_limit_are_row_errors() {
    let app = spawn_app().await;
    let id = template(&app, TEMPLATE, 60).await;
    let book = workbook(&[
        ("Ana", Some("70123456"), 1.0, (2026, 12, 10)),
        (
            "Maximiliano Gutiérrez de la Fuente",
            Some("70123457"),
            1.0,
            (2026, 12, 10),
        ),
    ]);
    let res = upload(
        &app,
        ("c.xlsx", book),
        &[
            ("template_id", &id),
            ("phone_column", "celular"),
            ("dry_run", "true"),
        ],
    )
    .await;
    let preview: Value = res.json().await.unwrap();
    assert_eq!(preview["messages_loaded"], 1);
    assert_eq!(preview["row_errors"][0]["row"], 3);
    let reason = preview["row_errors"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("limit of 60"), "{reason}");
}

#[tokio::test]
async fn numbers_on_the_suppression_list_are_row_errors_of_a_load() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/suppressions",
            &app.admin_token,
            json!({"phone": "71234567", "note": "pidió no recibir"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = template(&app, TEMPLATE, 140).await;
    let res = upload(
        &app,
        ("c.xlsx", three_rows()),
        &[("template_id", &id), ("phone_column", "celular")],
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let load: Value = res.json().await.unwrap();
    // Ana's row makes a message; Luis's phone is not valid; Eva opted out.
    assert_eq!(load["messages_loaded"], 1);
    assert_eq!(load["rows_failed"], 2);
    let eva = load["row_errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["row"] == 4)
        .unwrap();
    assert_eq!(eva["column"], "Celular");
    assert!(
        eva["reason"].as_str().unwrap().contains("suppression list"),
        "{eva}"
    );
    let loaded = messages_of(&app, load["id"].as_str().unwrap()).await;
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0]["to"], "+59170123456");
}

#[tokio::test]
async fn deleting_a_load_cancels_what_has_not_gone_and_counts_what_has() {
    let app = spawn_app().await;
    let id = template(&app, TEMPLATE, 140).await;
    let fields = [("template_id", id.as_str()), ("phone_column", "celular")];

    let res = upload(&app, ("a.xlsx", three_rows()), &fields).await;
    let waiting: Value = res.json().await.unwrap();
    let waiting_id = waiting["id"].as_str().unwrap().to_owned();
    let res = app
        .delete(&format!("/v1/loads/{waiting_id}"), &app.admin_token)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let deleted: Value = res.json().await.unwrap();
    assert_eq!(deleted["cancelled"], 2);
    assert_eq!(deleted["already_gone"], 0);
    assert!(
        messages_of(&app, &waiting_id)
            .await
            .iter()
            .all(|m| m["status"] == "cancelled")
    );
    let res = app
        .delete(&format!("/v1/loads/{waiting_id}"), &app.admin_token)
        .await;
    assert_problem(res, StatusCode::NOT_FOUND, None).await;

    let res = upload(&app, ("b.xlsx", three_rows()), &fields).await;
    let sent: Value = res.json().await.unwrap();
    let sent_id = sent["id"].as_str().unwrap().to_owned();
    let res = app
        .post("/v1/sending/start", &app.admin_token, json!({}))
        .await;
    assert!(res.status().is_success());
    poll(&app, &format!("/v1/loads/{sent_id}"), |l| {
        l["messages_by_status"]["delivered"] == 2
    })
    .await;
    let res = app
        .delete(&format!("/v1/loads/{sent_id}"), &app.admin_token)
        .await;
    let deleted: Value = res.json().await.unwrap();
    assert_eq!(deleted["cancelled"], 0);
    assert_eq!(deleted["already_gone"], 2);
    let one = app
        .get_json(&format!("/v1/loads/{sent_id}"), &app.admin_token)
        .await;
    assert_eq!(one["status"], "deleted");
    assert_eq!(one["deleted_by"], "admin");
}

#[tokio::test]
async fn the_format_settings_change_how_amounts_and_dates_are_written() {
    let app = spawn_app().await;
    let id = template(&app, TEMPLATE, 140).await;
    let res = app
        .put(
            "/v1/loads/settings",
            &app.admin_token,
            json!({
                "format": {"decimal_separator": ".", "thousands_separator": ",",
                           "decimals": 2, "date_format": "yyyy-mm-dd"},
                "schedule": {"enabled": false, "at": "07:30"}
            }),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = upload(
        &app,
        ("c.xlsx", three_rows()),
        &[
            ("template_id", &id),
            ("phone_column", "celular"),
            ("dry_run", "true"),
        ],
    )
    .await;
    let preview: Value = res.json().await.unwrap();
    assert_eq!(
        preview["messages"][1]["text"],
        "Hola Eva Choque, su cuota de Bs 1,234.75 vence el 2026-12-12."
    );
    let settings = app.get_json("/v1/loads/settings", &app.admin_token).await;
    assert_eq!(settings["schedule"]["at"], "07:30");

    let res = app
        .put(
            "/v1/loads/settings",
            &app.admin_token,
            json!({
                "format": {"decimal_separator": ";", "decimals": 2, "date_format": "dd/mm/yyyy"},
                "schedule": {"enabled": true, "at": "08:00"}
            }),
        )
        .await;
    assert_problem(
        res,
        StatusCode::UNPROCESSABLE_ENTITY,
        Some("format.decimal_separator"),
    )
    .await;
    let res = app
        .put(
            "/v1/loads/settings",
            &app.admin_token,
            json!({
                "format": {"decimal_separator": ",", "decimals": 2, "date_format": "dd/mm/yyyy"},
                "schedule": {"enabled": true, "at": "25:00"}
            }),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("schedule.at")).await;
}

/// The ERP's query, the same on every database: installments due on the reference date.
const QUERY: &str = "SELECT id_cuota, nombre, celular, monto, vence FROM {table} \
    WHERE vence = :reference_date ORDER BY id_cuota";

async fn set_source(app: &TestApp, url: &str, table: &str) -> (String, Value) {
    let id = template(app, TEMPLATE, 140).await;
    let res = app
        .put(
            "/v1/loads/source",
            &app.admin_token,
            json!({
                "url": url, "query": QUERY.replace("{table}", table),
                "phone_column": "celular", "key_column": "id_cuota", "template_id": id
            }),
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let view: Value = res.json().await.unwrap();
    (id, view)
}

/// Loads the ERP for 2026-12-10 twice and deletes the first load: the second skips every
/// row, and after the deletion the rows may be loaded again.
async fn erp_round(app: &TestApp) {
    let res = app
        .post(
            "/v1/loads/source/test",
            &app.admin_token,
            json!({"reference_date": "2026-12-10", "limit": 1}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let test: Value = res.json().await.unwrap();
    let names: Vec<&str> = test["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["id_cuota", "nombre", "celular", "monto", "vence"]);
    assert_eq!(test["rows"].as_array().unwrap().len(), 1);
    assert_eq!(test["rows"][0][3], "150,50");
    assert_eq!(test["rows"][0][4], "10/12/2026");

    let body = json!({"reference_date": "2026-12-10", "dry_run": true});
    let res = app.post("/v1/loads/erp", &app.admin_token, body).await;
    assert_eq!(res.status(), StatusCode::OK);
    let preview: Value = res.json().await.unwrap();
    assert_eq!(preview["messages_loaded"], 2);
    assert_eq!(preview["rows_failed"], 1);
    assert_eq!(
        preview["messages"][0]["text"],
        "Hola Ana Quispe, su cuota de Bs 150,50 vence el 10/12/2026."
    );
    assert_eq!(preview["messages"][0]["key"], "1");

    let body = json!({"reference_date": "2026-12-10"});
    let res = app
        .post("/v1/loads/erp", &app.admin_token, body.clone())
        .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let first: Value = res.json().await.unwrap();
    assert_eq!(first["kind"], "manual");
    assert_eq!(first["reference_date"], "2026-12-10");
    assert_eq!(first["messages_loaded"], 2);
    assert_eq!(first["rows_failed"], 1);

    let res = app
        .post("/v1/loads/erp", &app.admin_token, body.clone())
        .await;
    let second: Value = res.json().await.unwrap();
    assert_eq!(second["messages_loaded"], 0);
    assert_eq!(second["rows_skipped"], 2);
    let reason = second["skipped_rows"][0]["reason"].as_str().unwrap();
    assert!(reason.contains(first["id"].as_str().unwrap()), "{reason}");

    let res = app
        .delete(
            &format!("/v1/loads/{}", first["id"].as_str().unwrap()),
            &app.admin_token,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.post("/v1/loads/erp", &app.admin_token, body).await;
    let third: Value = res.json().await.unwrap();
    assert_eq!(third["messages_loaded"], 2, "{third}");
}

#[tokio::test]
async fn an_sqlite_erp_is_loaded_once_per_reference_date() {
    use sqlx::Connection;
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("erp.db").display());
    let mut erp = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
        .await
        .unwrap();
    for sql in erp_sql("cuotas", "TEXT", "REAL") {
        sqlx::query(&sql).execute(&mut erp).await.unwrap();
    }
    let (_, view) = set_source(&app, &url, "cuotas").await;
    assert_eq!(view["password_set"], false);
    erp_round(&app).await;

    // One message cancelled by itself, then its load deleted: both rows may load again.
    let history = app.get_json("/v1/loads", &app.admin_token).await;
    let last = history["loads"][0]["id"].as_str().unwrap().to_owned();
    let messages = messages_of(&app, &last).await;
    let one = messages[0]["id"].as_i64().unwrap();
    let res = app
        .delete(&format!("/v1/messages/{one}"), &app.admin_token)
        .await;
    assert!(res.status().is_success());
    let res = app
        .delete(&format!("/v1/loads/{last}"), &app.admin_token)
        .await;
    let deleted: Value = res.json().await.unwrap();
    assert_eq!(deleted["cancelled"], 1);
    let body = json!({"reference_date": "2026-12-10"});
    let res = app.post("/v1/loads/erp", &app.admin_token, body).await;
    let again: Value = res.json().await.unwrap();
    assert_eq!(again["messages_loaded"], 2, "{again}");
}

#[tokio::test]
async fn the_references_of_loads_are_not_for_clients() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/messages",
            &app.admin_token,
            json!({"to": "70123456", "text": "hola", "ref": "load-x-1"}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("ref")).await;
}

/// The ERP's table of installments and its rows, with the database's own text and exact
/// number types: three due on 2026-12-10 (one without a phone), one the day after.
fn erp_sql(table: &str, text: &str, exact: &str) -> [String; 2] {
    [
        format!(
            "CREATE TABLE {table} (id_cuota BIGINT PRIMARY KEY, nombre {text}, \
             celular {text}, monto {exact}, vence DATE)"
        ),
        format!(
            "INSERT INTO {table} VALUES (1, 'Ana Quispe', '70123456', 150.50, '2026-12-10'), \
             (2, 'Luis Mamani', NULL, 80, '2026-12-10'), \
             (3, 'Eva Choque', '71234567', 99.90, '2026-12-10'), \
             (4, 'Otro Dia', '71234568', 10, '2026-12-11')"
        ),
    ]
}

#[tokio::test]
async fn a_mariadb_erp_gives_exact_amounts_and_dates() {
    use sqlx::Connection;
    let app = spawn_app().await;
    let table = format!("cuotas_{}", uuid::Uuid::now_v7().simple());
    let mut erp = sqlx::MySqlConnection::connect("mysql://root@127.0.0.1:3306/test")
        .await
        .expect("the machine's MariaDB on 127.0.0.1:3306");
    for sql in erp_sql(&table, "VARCHAR(80)", "DECIMAL(12,2)") {
        sqlx::query(&sql).execute(&mut erp).await.unwrap();
    }
    set_source(&app, "mysql://root@127.0.0.1:3306/test", &table).await;
    erp_round(&app).await;
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(&mut erp)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_postgres_erp_gives_exact_amounts_and_dates() {
    use sqlx::Connection;
    let app = spawn_app().await;
    let table = format!("cuotas_{}", uuid::Uuid::now_v7().simple());
    let url = "postgres://postgres@127.0.0.1:5432/test";
    let mut erp = sqlx::PgConnection::connect(url)
        .await
        .expect("the machine's PostgreSQL on 127.0.0.1:5432");
    for sql in erp_sql(&table, "TEXT", "NUMERIC(12,2)") {
        sqlx::query(&sql).execute(&mut erp).await.unwrap();
    }
    set_source(&app, url, &table).await;
    erp_round(&app).await;
    sqlx::query(&format!("DROP TABLE {table}"))
        .execute(&mut erp)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_source_keeps_its_password_to_itself_and_checks_its_columns() {
    let app = spawn_app().await;
    let id = template(&app, "Hola <nombre>", 140).await;
    let source = |url: &str, phone: &str| {
        json!({
            "url": url, "query": "SELECT 1 AS id, 'Ana' AS nombre, '70123456' AS celular",
            "phone_column": phone, "key_column": "id", "template_id": id
        })
    };
    // A wrong password is refused by the server, and named.
    let res = app
        .put(
            "/v1/loads/source",
            &app.admin_token,
            source("mysql://root:equivocada@127.0.0.1:3306/test", "celular"),
        )
        .await;
    let problem = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("password")).await;
    assert!(!problem["detail"].as_str().unwrap().contains("equivocada"));

    let res = app
        .put(
            "/v1/loads/source",
            &app.admin_token,
            source(
                "postgres://postgres:secreto@127.0.0.1:5432/test",
                "telefono",
            ),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("phone_column")).await;

    let res = app
        .put(
            "/v1/loads/source",
            &app.admin_token,
            source("postgres://postgres:secreto@127.0.0.1:5432/test", "celular"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let text = res.text().await.unwrap();
    assert!(!text.contains("secreto"), "{text}");
    let view = app.get_json("/v1/loads/source", &app.admin_token).await;
    assert_eq!(view["url"], "postgres://postgres@127.0.0.1:5432/test");
    assert_eq!(view["password_set"], true);
    assert_eq!(view["columns"], json!(["id", "nombre", "celular"]));

    // Templates are checked against the source's columns.
    let res = app
        .post(
            "/v1/templates",
            &app.admin_token,
            json!({"name": "otra", "text": "Hola <nombre>, <saldo>"}),
        )
        .await;
    let saved: Value = res.json().await.unwrap();
    let warnings = saved["source_warnings"].as_array().unwrap();
    assert_eq!(warnings.len(), 1);
    assert!(warnings[0].as_str().unwrap().contains("saldo"));

    let res = app
        .put(
            "/v1/loads/source",
            &app.admin_token,
            json!({"url": "oracle://x", "query": "SELECT 1", "phone_column": "a",
                   "key_column": "b", "template_id": id}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("url")).await;
    let res = app
        .put(
            "/v1/loads/source",
            &app.admin_token,
            json!({"url": "sqlite://x.db", "query": "SELECT :fecha", "phone_column": "a",
                   "key_column": "b", "template_id": id}),
        )
        .await;
    assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("query")).await;
}

#[tokio::test]
async fn an_unreachable_erp_is_recorded_as_a_failed_load() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("erp.db").display());
    {
        use sqlx::Connection;
        let mut erp = sqlx::SqliteConnection::connect(&format!("{url}?mode=rwc"))
            .await
            .unwrap();
        sqlx::query(
            "CREATE TABLE cuotas (id_cuota INTEGER, nombre TEXT, celular TEXT, monto REAL, \
             vence DATE)",
        )
        .execute(&mut erp)
        .await
        .unwrap();
    }
    set_source(&app, &url, "cuotas").await;
    std::fs::remove_file(dir.path().join("erp.db")).unwrap();

    let res = app
        .post(
            "/v1/loads/erp",
            &app.admin_token,
            json!({"reference_date": "2026-12-10"}),
        )
        .await;
    let problem = assert_problem(res, StatusCode::UNPROCESSABLE_ENTITY, Some("source.url")).await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("recorded as failed load")
    );
    let history = app.get_json("/v1/loads", &app.admin_token).await;
    assert_eq!(history["loads"][0]["status"], "failed");
    assert!(
        history["loads"][0]["error"]
            .as_str()
            .unwrap()
            .starts_with("source.url")
    );
}
