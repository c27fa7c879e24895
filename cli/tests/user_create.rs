//! `ferrocopr user create` (issue 7): prints a copr-cli config whose login and token the API
//! accepts, refuses a name that is taken or malformed with a clear message, and keeps only the
//! token's hash in the database.

use std::process::Command;

const BINARY: &str = env!("CARGO_BIN_EXE_ferrocopr");

fn create(data_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BINARY)
        .args(["user", "create"])
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .args(["--public-url", "http://127.0.0.1:8080/"])
        .env_remove("FERROCOPR_DATABASE_URL")
        .output()
        .expect("run ferrocopr")
}

fn value<'a>(config: &'a str, key: &str) -> &'a str {
    config
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key} = ")))
        .unwrap_or_else(|| panic!("no {key} in:\n{config}"))
}

#[tokio::test]
async fn user_create_prints_a_copr_cli_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = create(dir.path(), &["alice", "--group", "@ruby"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = String::from_utf8(out.stdout).expect("utf-8");
    assert!(config.starts_with("[copr-cli]\n"), "{config}");
    assert_eq!(value(&config, "username"), "alice");
    assert_eq!(value(&config, "copr_url"), "http://127.0.0.1:8080");
    assert_eq!(value(&config, "encrypted"), "False");
    let (login, token) = (value(&config, "login"), value(&config, "token"));
    assert_eq!((login.len(), token.len()), (32, 32));

    let url = format!(
        "sqlite://{}?mode=rw",
        dir.path().join("ferrocopr.db").display()
    );
    let db = ferrocopr_schema::Db::connect(&url).await.expect("open");
    let stored = db.api_token(login).await.expect("read").expect("the token");
    assert_eq!(stored.user.name, "alice");
    assert_ne!(stored.token_sha256, token, "the token is stored hashed");
    assert_eq!(
        db.user_groups(&stored.user).await.expect("groups"),
        ["ruby"]
    );
    let header = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{login}:{token}")
        )
    );
    let user = ferrocopr_bot::users::authenticate(&db, Some(&header))
        .await
        .expect("the printed credentials authenticate");
    assert_eq!(user.name, "alice");
    let wrong = format!(
        "Basic {}",
        base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{login}:x{token}")
        )
    );
    assert!(
        ferrocopr_bot::users::authenticate(&db, Some(&wrong))
            .await
            .is_err()
    );
    db.close().await;

    let again = create(dir.path(), &["alice"]);
    assert!(!again.status.success());
    assert_eq!(
        String::from_utf8_lossy(&again.stderr).trim(),
        "ferrocopr: There is already a user called \"alice\"."
    );
    let bad = create(dir.path(), &["../x"]);
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("is not a user name"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}
