//! The store's test suite. Every test runs twice: `sqlite::<name>` on a fresh SQLite file and
//! `postgres::<name>` on a fresh PostgreSQL database.

use ledgerflow_store::testing::TestDb;
use ledgerflow_store::vault::generate_key;
use ledgerflow_store::{CredentialPatch, Keyring, NewCredential, Store, StoreError};
use secrecy::ExposeSecret;
use serde_json::{json, Map, Value};
use sqlx::Row;

macro_rules! store_suite {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let dir = tempfile::tempdir().unwrap();
                    let db = ledgerflow_store::testing::TestDb::sqlite(dir.path());
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(db) = ledgerflow_store::testing::TestDb::postgres().await else { return };
                    super::$name(&db).await;
                    db.drop_db().await;
                }
            )*
        }
    };
}

store_suite!(
    credential_round_trip_survives_reconnect,
    secret_plaintext_is_never_stored,
    update_merges_fields_and_null_removes,
    wrong_key_is_refused_by_name,
    rotation_reencrypts_and_old_keyrings_are_told_what_is_missing,
    interrupted_rotation_leaves_every_secret_readable,
    only_one_owner_even_when_racing,
    sessions_and_api_keys_resolve_to_their_user,
    migrations_are_idempotent_and_concurrent_safe,
    oauth_state_works_once_and_expires,
    tokens_are_sealed_and_refresh_is_conditional_on_generation,
    tenants_accumulate_across_consents,
    a_lease_has_one_holder_until_it_expires,
    rotation_covers_tokens_and_states,
    workflows_are_stored_versioned_and_activated,
    each_queued_execution_is_claimed_by_exactly_one_worker,
    stale_executions_are_requeued_or_marked_crashed_never_lost,
);

fn key() -> String {
    generate_key()
}

fn obj(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

async fn open(db: &TestDb, keys: &str) -> Store {
    Store::connect(&db.url, Keyring::from_env_value(keys).unwrap())
        .await
        .unwrap()
}

async fn new_basic(store: &Store, name: &str, password: &str) -> String {
    store
        .create_credential(NewCredential {
            name: name.into(),
            type_name: "httpBasicAuth".into(),
            public: obj(json!({"user": "ann"})),
            secret: obj(json!({"password": password})),
        })
        .await
        .unwrap()
        .id
}

async fn credential_round_trip_survives_reconnect(db: &TestDb) {
    let k = key();
    let store = open(db, &k).await;
    let id = new_basic(&store, "Shop API", "pw-round-trip").await;
    store.close().await;

    let store = open(db, &k).await;
    let list = store.list_credentials().await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "Shop API");
    assert_eq!(list[0].type_name, "httpBasicAuth");
    assert_eq!(list[0].data, obj(json!({"user": "ann"})));
    assert_eq!(list[0].secret_fields_set, vec!["password".to_string()]);
    let secrets = store.credential_secrets(&id).await.unwrap();
    assert_eq!(secrets["password"].expose_secret(), "pw-round-trip");
    store.delete_credential(&id).await.unwrap();
    assert!(matches!(
        store.get_credential(&id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.delete_credential(&id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn secret_plaintext_is_never_stored(db: &TestDb) {
    let store = open(db, &key()).await;
    let marker = "MARKER-7f3a9c-plaintext";
    let id = new_basic(&store, "Marker", marker).await;
    // Serialising a credential (what the API returns) never includes the secret.
    let shown = serde_json::to_string(&store.get_credential(&id).await.unwrap()).unwrap();
    assert!(!shown.contains(marker));
    // Every stored column, read raw, lacks the plaintext.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let row = sqlx::query(
        "SELECT name, type, public_data, secret_fields, secret_data FROM credentials WHERE id = $1",
    )
    .bind(&id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let blob: Vec<u8> = row.try_get("secret_data").unwrap();
    assert!(!String::from_utf8_lossy(&blob).contains(marker));
    let public: String = row.try_get("public_data").unwrap();
    assert!(!public.contains(marker));
    pool.close().await;
    store.close().await;
    if !db.is_postgres() {
        // The whole SQLite file set (database and WAL), byte for byte.
        let path = db.url.trim_start_matches("sqlite://");
        let path = path.split('?').next().unwrap();
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                assert!(
                    !bytes.windows(marker.len()).any(|w| w == marker.as_bytes()),
                    "plaintext found in {path}{suffix}"
                );
            }
        }
    }
}

async fn update_merges_fields_and_null_removes(db: &TestDb) {
    let store = open(db, &key()).await;
    let id = store
        .create_credential(NewCredential {
            name: "Header".into(),
            type_name: "httpHeaderAuth".into(),
            public: obj(json!({"name": "X-Api-Key"})),
            secret: obj(json!({"value": "v1", "extra": "e"})),
        })
        .await
        .unwrap()
        .id;
    let updated = store
        .update_credential(
            &id,
            CredentialPatch {
                name: Some("Header 2".into()),
                public: obj(json!({"name": "X-Key"})),
                secret: obj(json!({"value": "v2", "extra": null})),
            },
        )
        .await
        .unwrap();
    assert_eq!(updated.name, "Header 2");
    assert_eq!(updated.data["name"], "X-Key");
    assert_eq!(updated.secret_fields_set, vec!["value".to_string()]);
    let secrets = store.credential_secrets(&id).await.unwrap();
    assert_eq!(secrets["value"].expose_secret(), "v2");
    assert!(!secrets.contains_key("extra"));
    assert_eq!(store.get_credential(&id).await.unwrap().name, "Header 2");
}

async fn wrong_key_is_refused_by_name(db: &TestDb) {
    let store = open(db, &key()).await;
    new_basic(&store, "A", "pw").await;
    store.close().await;
    let err = Store::connect(&db.url, Keyring::from_env_value(&key()).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::WrongKey { version: 1, .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(msg.contains("LEDGERFLOW_ENCRYPTION_KEY"), "{msg}");
    assert!(msg.contains("does not match"), "{msg}");
}

async fn rotation_reencrypts_and_old_keyrings_are_told_what_is_missing(db: &TestDb) {
    let k1 = key();
    let store = open(db, &k1).await;
    let a = new_basic(&store, "A", "pw-a").await;
    let b = new_basic(&store, "B", "pw-b").await;
    store.close().await;

    let both = format!("1:{k1},2:{}", key());
    let store = open(db, &both).await;
    let (version, n) = store.rotate_keys(false).await.unwrap();
    assert_eq!((version, n), (2, 2));
    assert_eq!(store.key_usage().await.unwrap(), vec![(2, 2)]);
    assert_eq!(
        store.credential_secrets(&a).await.unwrap()["password"].expose_secret(),
        "pw-a"
    );
    // Rotating again has nothing left to do.
    assert_eq!(store.rotate_keys(false).await.unwrap(), (2, 0));
    store.close().await;

    // A server still holding only version 1 is told that version 2 is missing.
    let err = Store::connect(&db.url, Keyring::from_env_value(&k1).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::KeyMissing { version: 2, .. }),
        "{err}"
    );
    let store = open(db, &both).await;
    assert_eq!(
        store.credential_secrets(&b).await.unwrap()["password"].expose_secret(),
        "pw-b"
    );
}

async fn interrupted_rotation_leaves_every_secret_readable(db: &TestDb) {
    // A key file keyring, as `ledgerflow keys rotate` uses.
    let home = tempfile::tempdir().unwrap();
    let ring = Keyring::load(home.path(), None).unwrap();
    let store = Store::connect(&db.url, ring.clone()).await.unwrap();
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(new_basic(&store, &format!("C{i}"), &format!("pw-{i}")).await);
    }
    // Rotate, but stop after the first write to simulate an interruption: the new version is
    // in the key file and some rows use it, others do not.
    let (target, _) = {
        let new = ring.add_version().unwrap();
        (new, ())
    };
    store.close().await;
    let store = Store::connect(&db.url, Keyring::load(home.path(), None).unwrap())
        .await
        .unwrap();
    store
        .update_credential(&ids[0], CredentialPatch::default())
        .await
        .unwrap();
    let usage = store.key_usage().await.unwrap();
    assert_eq!(usage, vec![(1, 5), (target, 1)]);
    for (i, id) in ids.iter().enumerate() {
        let s = store.credential_secrets(id).await.unwrap();
        assert_eq!(s["password"].expose_secret(), format!("pw-{i}"));
    }
    // Finishing the rotation later converges.
    let (v, n) = store.rotate_keys(false).await.unwrap();
    assert_eq!((v, n), (target, 5));
}

async fn only_one_owner_even_when_racing(db: &TestDb) {
    let store = open(db, &key()).await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.create_owner(&format!("owner{i}@example.com"), "hash")
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::Conflict(m)) => assert!(m.contains("owner")),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(store.user_count().await.unwrap(), 1);
}

async fn sessions_and_api_keys_resolve_to_their_user(db: &TestDb) {
    let store = open(db, &key()).await;
    let user = store.create_owner("Ann@Example.com", "hash").await.unwrap();
    assert_eq!(user.email, "ann@example.com");
    assert!(store
        .user_by_email("ANN@example.com")
        .await
        .unwrap()
        .is_some());

    let far = ledgerflow_store::now_ms() + 60_000;
    store
        .create_session(&user.id, "sess-hash", far)
        .await
        .unwrap();
    store
        .create_session(&user.id, "old-hash", ledgerflow_store::now_ms() - 1)
        .await
        .unwrap();
    assert_eq!(
        store.session_user("sess-hash").await.unwrap().unwrap().id,
        user.id
    );
    assert!(store.session_user("old-hash").await.unwrap().is_none());
    assert!(store.session_user("nope").await.unwrap().is_none());
    store.delete_session("sess-hash").await.unwrap();
    assert!(store.session_user("sess-hash").await.unwrap().is_none());

    let key = store
        .create_api_key(&user.id, "ci", "lf_abcd", "key-hash")
        .await
        .unwrap();
    assert_eq!(
        store.api_key_user("key-hash").await.unwrap().unwrap().id,
        user.id
    );
    assert!(store.api_key_user("other").await.unwrap().is_none());
    let keys = store.list_api_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert!(keys[0].last_used_at.is_some());
    store.delete_api_key(&key.id).await.unwrap();
    assert!(store.api_key_user("key-hash").await.unwrap().is_none());
}

async fn migrations_are_idempotent_and_concurrent_safe(db: &TestDb) {
    let k = key();
    let (a, b) = tokio::join!(
        Store::connect(&db.url, Keyring::from_env_value(&k).unwrap()),
        Store::connect(&db.url, Keyring::from_env_value(&k).unwrap()),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    new_basic(&a, "A", "x").await;
    assert_eq!(b.count_credentials().await.unwrap(), 1);
    a.close().await;
    b.close().await;
    let c = open(db, &k).await;
    assert_eq!(c.count_credentials().await.unwrap(), 1);
}

async fn oauth_state_works_once_and_expires(db: &TestDb) {
    let store = open(db, &key()).await;
    let cred = new_basic(&store, "X", "pw").await;
    let verifier = secrecy::SecretString::from("verifier-abc".to_string());
    store
        .create_oauth_state("h1", &cred, "user-1", "http://cb", &verifier, 60_000)
        .await
        .unwrap();
    store
        .create_oauth_state("h2", &cred, "user-1", "http://cb", &verifier, -1)
        .await
        .unwrap();
    match store.take_oauth_state("h1").await.unwrap() {
        ledgerflow_store::StateCheck::Valid(p) => {
            assert_eq!(p.credential_id, cred);
            assert_eq!(p.user_id, "user-1");
            assert_eq!(p.pkce_verifier.expose_secret(), "verifier-abc");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        store.take_oauth_state("h1").await.unwrap(),
        ledgerflow_store::StateCheck::AlreadyUsed
    ));
    assert!(matches!(
        store.take_oauth_state("h2").await.unwrap(),
        ledgerflow_store::StateCheck::Expired
    ));
    assert!(matches!(
        store.take_oauth_state("forged").await.unwrap(),
        ledgerflow_store::StateCheck::Unknown
    ));
}

async fn tokens_are_sealed_and_refresh_is_conditional_on_generation(db: &TestDb) {
    let store = open(db, &key()).await;
    let cred = new_basic(&store, "X", "pw").await;
    assert_eq!(
        store.oauth_status(&cred).await.unwrap().status,
        "never_connected"
    );
    let s = |v: &str| secrecy::SecretString::from(v.to_string());
    store
        .save_connected_tokens(
            &cred,
            &s("ACCESS-1"),
            Some(&s("REFRESH-1")),
            1000,
            "openid offline_access",
        )
        .await
        .unwrap();
    let t = store.oauth_tokens(&cred).await.unwrap().unwrap();
    assert_eq!(
        t.refresh_token.as_ref().unwrap().expose_secret(),
        "REFRESH-1"
    );
    let gen = t.generation;
    assert!(store
        .save_refreshed_tokens(
            &cred,
            gen,
            &s("ACCESS-2"),
            Some(&s("REFRESH-2")),
            2000,
            "openid"
        )
        .await
        .unwrap());
    // A second writer holding the old generation loses.
    assert!(!store
        .save_refreshed_tokens(
            &cred,
            gen,
            &s("ACCESS-3"),
            Some(&s("REFRESH-3")),
            3000,
            "openid"
        )
        .await
        .unwrap());
    let t = store.oauth_tokens(&cred).await.unwrap().unwrap();
    assert_eq!(t.access_token.expose_secret(), "ACCESS-2");
    assert_eq!(t.access_expires_at, 2000);
    let status = store.oauth_status(&cred).await.unwrap();
    assert_eq!(status.status, "connected");
    assert!(status.refreshed_at.is_some());
    store
        .mark_needs_reconnect(&cred, "Xero refused the refresh token (invalid_grant)")
        .await
        .unwrap();
    let status = store.oauth_status(&cred).await.unwrap();
    assert_eq!(status.status, "needs_reconnect");
    assert!(status.status_reason.unwrap().contains("invalid_grant"));

    // Raw rows hold no token plaintext.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&db.url).await.unwrap();
    let blob: Vec<u8> = sqlx::query("SELECT sealed_tokens FROM credential_oauth")
        .fetch_one(&pool)
        .await
        .unwrap()
        .try_get("sealed_tokens")
        .unwrap();
    assert!(!String::from_utf8_lossy(&blob).contains("REFRESH-2"));
    pool.close().await;
    // Deleting the credential removes its tokens.
    store.delete_credential(&cred).await.unwrap();
    assert!(store.oauth_tokens(&cred).await.unwrap().is_none());
}

async fn tenants_accumulate_across_consents(db: &TestDb) {
    let store = open(db, &key()).await;
    let cred = new_basic(&store, "X", "pw").await;
    let t = |id: &str, name: &str, ev: &str| ledgerflow_store::Tenant {
        tenant_id: id.into(),
        connection_id: format!("conn-{id}"),
        tenant_name: name.into(),
        tenant_type: "ORGANISATION".into(),
        auth_event_id: Some(ev.into()),
        created_at: 0,
        updated_at: 0,
    };
    store
        .upsert_tenants(&cred, &[t("a", "Alpha", "ev1")])
        .await
        .unwrap();
    store
        .upsert_tenants(&cred, &[t("b", "Beta", "ev2"), t("a", "Alpha Ltd", "ev2")])
        .await
        .unwrap();
    let list = store.tenants(&cred).await.unwrap();
    let names: Vec<_> = list.iter().map(|t| t.tenant_name.as_str()).collect();
    assert_eq!(names, vec!["Alpha Ltd", "Beta"]);
    store.remove_tenant(&cred, "a").await.unwrap();
    assert_eq!(store.tenants(&cred).await.unwrap().len(), 1);
    assert!(matches!(
        store.remove_tenant(&cred, "a").await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_lease_has_one_holder_until_it_expires(db: &TestDb) {
    let store = open(db, &key()).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.try_lease("refresh:x", &format!("p{i}"), 60_000)
                .await
                .unwrap()
        }));
    }
    let mut winners = 0;
    for t in tasks {
        winners += t.await.unwrap() as i32;
    }
    assert_eq!(winners, 1);
    assert!(store.try_lease("short", "a", -1).await.unwrap());
    assert!(
        store.try_lease("short", "b", 60_000).await.unwrap(),
        "expired lease is free"
    );
    assert!(!store.try_lease("short", "a", 60_000).await.unwrap());
    assert!(
        store.try_lease("short", "b", 60_000).await.unwrap(),
        "holder renews"
    );
    store.release_lease("short", "b").await.unwrap();
    assert!(store.try_lease("short", "a", 60_000).await.unwrap());
    assert!(store.try_lease("old", "a", -10).await.unwrap());
    assert_eq!(
        store
            .prune_leases(ledgerflow_store::now_ms())
            .await
            .unwrap(),
        1,
        "only the expired one"
    );
    assert!(
        !store.try_lease("short", "b", 60_000).await.unwrap(),
        "live leases stay"
    );
}

async fn rotation_covers_tokens_and_states(db: &TestDb) {
    let k1 = key();
    let store = open(db, &k1).await;
    let cred = new_basic(&store, "X", "pw").await;
    let s = |v: &str| secrecy::SecretString::from(v.to_string());
    store
        .save_connected_tokens(&cred, &s("A"), Some(&s("R")), 1, "x")
        .await
        .unwrap();
    store
        .create_oauth_state("st", &cred, "u", "http://cb", &s("V"), 60_000)
        .await
        .unwrap();
    store.close().await;
    let store = open(db, &format!("1:{k1},2:{}", key())).await;
    assert_eq!(store.rotate_keys(false).await.unwrap(), (2, 3));
    assert_eq!(store.verify_secrets().await.unwrap(), (3, vec![]));
    assert_eq!(
        store
            .oauth_tokens(&cred)
            .await
            .unwrap()
            .unwrap()
            .refresh_token
            .unwrap()
            .expose_secret(),
        "R"
    );
}

async fn workflows_are_stored_versioned_and_activated(db: &TestDb) {
    let store = open(db, &key()).await;
    let w = store
        .create_workflow("Invoices to Slack", r#"{"nodes":[]}"#)
        .await
        .unwrap();
    assert!(!w.active);
    let w2 = store
        .update_workflow(&w.id, "Invoices", r#"{"nodes":[1]}"#)
        .await
        .unwrap();
    assert_eq!(
        (w2.version, w2.name.as_str(), w2.definition.as_str()),
        (2, "Invoices", r#"{"nodes":[1]}"#)
    );
    store.set_workflow_active(&w.id, true).await.unwrap();
    assert_eq!(store.active_workflows().await.unwrap().len(), 1);
    assert_eq!(store.workflows().await.unwrap().len(), 1);
    let e = store
        .enqueue_execution(&w.id, "manual", "{}", None)
        .await
        .unwrap();
    store.delete_workflow(&w.id).await.unwrap();
    assert!(
        matches!(store.execution(&e.id).await, Err(StoreError::NotFound(_))),
        "executions go with their workflow"
    );
    assert!(matches!(
        store.workflow(&w.id).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn each_queued_execution_is_claimed_by_exactly_one_worker(db: &TestDb) {
    let store = open(db, &key()).await;
    let w = store.create_workflow("W", "{}").await.unwrap();
    for i in 0..20 {
        store
            .enqueue_execution(&w.id, "manual", &format!("{{\"i\":{i}}}"), None)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for worker in 0..6 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            while let Some(e) = s.claim_execution(&format!("w{worker}")).await.unwrap() {
                assert_eq!(e.status, "running");
                assert_eq!(e.claimed_by.as_deref(), Some(format!("w{worker}").as_str()));
                mine.push(e.id);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!((n, all.len()), (20, 20));
    let owner = |id: String| {
        let store = store.clone();
        async move { store.execution(&id).await.unwrap().claimed_by.unwrap() }
    };
    let w0 = owner(all[0].clone()).await;
    assert!(
        !store
            .finish_execution(&all[0], "someone-else", "succeeded", None, None)
            .await
            .unwrap(),
        "only the owning worker records the outcome"
    );
    assert!(store
        .finish_execution(&all[0], &w0, "succeeded", Some("{\"nodes\":{}}"), None)
        .await
        .unwrap());
    let done = store.execution(&all[0]).await.unwrap();
    assert_eq!(done.status, "succeeded");
    assert!(done.finished_at.is_some() && done.run_data.is_some());
    assert!(store.cancel_execution(&all[1]).await.unwrap());
    assert!(!store.cancel_execution(&all[1]).await.unwrap());
    // A cancelled execution stays cancelled when its worker finishes late.
    let w1 = owner(all[1].clone()).await;
    assert!(!store
        .finish_execution(&all[1], &w1, "succeeded", None, None)
        .await
        .unwrap());
    assert_eq!(store.execution(&all[1]).await.unwrap().status, "cancelled");
    let filter = ledgerflow_store::ExecutionFilter {
        workflow_id: Some(w.id.clone()),
        status: Some("running".into()),
        limit: Some(100),
    };
    assert_eq!(store.executions(&filter).await.unwrap().len(), 18);
    assert_eq!(
        store.executions(&Default::default()).await.unwrap().len(),
        20
    );
    assert_eq!(
        store
            .prune_executions(ledgerflow_store::now_ms() + 1)
            .await
            .unwrap(),
        2
    );
}

async fn stale_executions_are_requeued_or_marked_crashed_never_lost(db: &TestDb) {
    let store = open(db, &key()).await;
    let w = store.create_workflow("W", "{}").await.unwrap();
    for _ in 0..2 {
        store
            .enqueue_execution(&w.id, "manual", "{}", None)
            .await
            .unwrap();
    }
    let a = store.claim_execution("dead-worker").await.unwrap().unwrap();
    assert!(store
        .heartbeat_execution(&a.id, "dead-worker", Some("{\"progress\":1}"))
        .await
        .unwrap());
    assert!(!store
        .heartbeat_execution(&a.id, "someone-else", None)
        .await
        .unwrap());
    let _b = store.claim_execution("dead-worker").await.unwrap().unwrap();
    // Nothing is stale yet.
    let (r, c) = store
        .recover_stale_executions(ledgerflow_store::now_ms() - 60_000)
        .await
        .unwrap();
    assert!(r.is_empty() && c.is_empty());
    // `a` saved a checkpoint after a node; `b` never finished one.
    assert!(store
        .checkpoint_execution(&a.id, "dead-worker", "{\"nodes\":1}", "{\"stack\":[]}")
        .await
        .unwrap());
    let (requeued, crashed) = store
        .recover_stale_executions(ledgerflow_store::now_ms() + 1)
        .await
        .unwrap();
    assert_eq!(requeued, vec![a.id.clone()]);
    assert_eq!(crashed.len(), 1);
    let again = store.claim_execution("new-worker").await.unwrap().unwrap();
    assert_eq!(again.id, a.id);
    assert_eq!(
        store.execution_checkpoint(&a.id).await.unwrap().as_deref(),
        Some("{\"stack\":[]}"),
        "the checkpoint survives for resuming"
    );
    let e = store.execution(&crashed[0]).await.unwrap();
    assert_eq!(e.status, "crashed");
    assert!(e.error.unwrap().contains("stopped"));
}
