//! The behaviour every [`Store`] engine must show; each engine's tests run these checks.

use agentops_core::EndState;

use super::{EventRecord, Outcome, SessionRecord, Store, StoreError, Write};

fn event(id: &str, session: &str, start: &str, cost: Option<f64>) -> EventRecord {
    EventRecord {
        id: id.into(),
        session_id: session.into(),
        kind: "llms".into(),
        start_time: start.into(),
        cost,
        attributes: serde_json::json!({}),
        ..EventRecord::default()
    }
}

/// Idempotent writes, project scoping, session cost, tag replacement.
pub fn writes_are_idempotent_and_project_scoped(store: &dyn Store) {
    let a = store.create_project("a").unwrap();
    let b = store.create_project("b").unwrap();
    let s = SessionRecord {
        id: "s1".into(),
        start_time: Some("2026-01-01T00:00:00.000000+00:00".into()),
        ..Default::default()
    };
    let writes = vec![
        Write::CreateSession {
            project_id: a.clone(),
            session: s.clone(),
        },
        Write::CreateEvents {
            project_id: a.clone(),
            session_id: "s1".into(),
            events: vec![event(
                "e1",
                "s1",
                "2026-01-01T00:00:01.000000+00:00",
                Some(0.5),
            )],
        },
    ];
    let r = store.commit(&writes).unwrap();
    assert!(r.iter().all(Result::is_ok));
    // retry: nothing new
    let r = store.commit(&writes).unwrap();
    assert_eq!(r[1].as_ref().unwrap(), &Outcome::Inserted(0));

    // project b's session "s1" is its own: writing it leaves a's untouched
    let r = store
        .commit(&[
            Write::CreateSession {
                project_id: b.clone(),
                session: SessionRecord {
                    end_state: Some(EndState::Fail),
                    ..s.clone()
                },
            },
            Write::CreateEvents {
                project_id: b.clone(),
                session_id: "s1".into(),
                events: vec![event("e2", "s1", "x", Some(2.0))],
            },
            Write::UpdateSession {
                project_id: b.clone(),
                session: SessionRecord {
                    id: "s1".into(),
                    ..Default::default()
                },
            },
        ])
        .unwrap();
    assert_eq!(r[1].as_ref().unwrap(), &Outcome::Inserted(1));
    assert_eq!(r[2].as_ref().unwrap(), &Outcome::SessionCost(2.0));
    let theirs = store.session_detail(&b, "s1").unwrap().unwrap();
    assert_eq!(theirs.summary.end_state.as_deref(), Some("Fail"));
    assert_eq!(theirs.events.len(), 1);
    assert!(store.session_exists(&b, "s1").unwrap());
    // a session b does not have is not found, whoever else has that id
    let r = store
        .commit(&[Write::CreateEvents {
            project_id: b.clone(),
            session_id: "s9".into(),
            events: vec![event("e3", "s9", "x", None)],
        }])
        .unwrap();
    assert!(matches!(r[0], Err(StoreError::NotFound(_))));
    assert!(!store.session_exists(&b, "s9").unwrap());

    let detail = store.session_detail(&a, "s1").unwrap().unwrap();
    assert_eq!(detail.events.len(), 1);
    assert_eq!(detail.summary.end_state, None);
    assert!((detail.summary.cost - 0.5).abs() < 1e-12);

    let r = store
        .commit(&[Write::UpdateSession {
            project_id: a.clone(),
            session: SessionRecord {
                id: "s1".into(),
                end_state: Some(EndState::Success),
                tags: Some(vec!["x".into()]),
                ..Default::default()
            },
        }])
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap(), &Outcome::SessionCost(0.5));
    let list = store.list_sessions(&a, 10).unwrap();
    assert_eq!(list[0].end_state.as_deref(), Some("Success"));
    assert_eq!(list[0].tags, vec!["x".to_string()]);
}

/// OTLP spans of a session id that another project also uses land in the sender's session.
pub fn projects_have_their_own_session_ids(store: &dyn Store) {
    let a = store.create_project("a").unwrap();
    let b = store.create_project("b").unwrap();
    let sess = |id: &str| SessionRecord {
        id: id.into(),
        ..Default::default()
    };
    store
        .commit(&[Write::CreateSession {
            project_id: a.clone(),
            session: sess("t1"),
        }])
        .unwrap();
    let r = store
        .commit(&[Write::IngestSpans {
            project_id: b.clone(),
            sessions: vec![sess("t1"), sess("t2")],
            spans: vec![event("x1", "t1", "1", None), event("x2", "t2", "2", None)],
        }])
        .unwrap();
    assert_eq!(r[0].as_ref().unwrap(), &Outcome::Inserted(2));
    let events = |project: &str, session: &str| {
        store
            .session_detail(project, session)
            .unwrap()
            .map(|detail| detail.events.len())
    };
    assert_eq!(events(&b, "t1"), Some(1));
    assert_eq!(events(&b, "t2"), Some(1));
    assert_eq!(events(&a, "t1"), Some(0));
    assert_eq!(events(&a, "t2"), None);
}
