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

    // project b cannot take over or write into a's session
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
                events: vec![event("e2", "s1", "x", None)],
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
    assert!(matches!(r[0], Err(StoreError::Forbidden(_))));
    assert!(matches!(r[1], Err(StoreError::Forbidden(_))));
    assert!(matches!(r[2], Err(StoreError::Forbidden(_))));
    assert!(store.list_sessions(&b, 10).unwrap().is_empty());

    let detail = store.session_detail(&a, "s1").unwrap().unwrap();
    assert_eq!(detail.events.len(), 1);
    assert_eq!(detail.summary.end_state, None);
    assert!((detail.summary.cost - 0.5).abs() < 1e-12);
    assert!(store.session_detail(&b, "s1").unwrap().is_none());

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

/// OTLP spans of another project's session are refused, the others stored.
pub fn spans_of_a_foreign_session_are_rejected_alone(store: &dyn Store) {
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
    assert!(matches!(r[0], Ok(Outcome::Spans { rejected: 1, .. })));
    assert_eq!(
        store
            .session_detail(&b, "t2")
            .unwrap()
            .unwrap()
            .events
            .len(),
        1
    );
    assert_eq!(
        store
            .session_detail(&a, "t1")
            .unwrap()
            .unwrap()
            .events
            .len(),
        0
    );
}
