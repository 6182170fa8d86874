//! The payload dictionaries of a database (see [`crate::store::payload`]), shared by every
//! replica: stored in `payload_dictionaries`, made known to the process when the store
//! connects, trained once (stored by whichever replica first trains one on enough stored
//! payloads), and fetched when a read meets payloads packed with a dictionary that another
//! replica trained after this one connected.

use agentops_core::timestamp::now;
use tokio_postgres::{Client, GenericClient, Row};

use super::pg_error;
use crate::store::payload::{
    dictionary_of, is_registered, payload_text, register_dictionary, DictionaryId,
    TRAINING_SAMPLES, TRAIN_AFTER,
};
use crate::store::StoreError;

/// The advisory lock a replica stores a trained dictionary under, so that replicas that
/// trained at the same time store one dictionary, not one each.
const STORING_LOCK: i64 = 0x6167_656e_7473_0002;

/// Registers every stored dictionary; the newest, which new payloads are packed with.
pub(super) async fn load(client: &impl GenericClient) -> Result<Option<DictionaryId>, StoreError> {
    let rows = client
        .query("SELECT bytes FROM payload_dictionaries ORDER BY id", &[])
        .await
        .map_err(pg_error)?;
    let mut newest = None;
    for row in rows {
        let bytes: &[u8] = row.try_get(0).map_err(pg_error)?;
        newest = Some(register_dictionary(bytes));
    }
    Ok(newest)
}

/// What a replica looking for a payload dictionary finds in the database.
#[derive(Debug)]
pub(super) enum Found {
    /// A dictionary is stored (another replica trained it, or it came with migrated data):
    /// the newest.
    Stored(DictionaryId),
    /// None is stored and [`TRAIN_AFTER`] payloads are: samples to train one on.
    Samples(Vec<Vec<u8>>),
    /// None is stored, and too few payloads to train one.
    TooFewPayloads,
}

/// The stored dictionary, or samples to train one on once [`TRAIN_AFTER`] payloads are
/// stored. Training ([`train_dictionary`](crate::store::payload::train_dictionary)) takes a
/// while: it runs between this call and [`store_unless_stored`], outside any deadline.
pub(super) async fn stored_or_samples(client: &mut Client) -> Result<Found, StoreError> {
    if let Some(stored) = load(client).await? {
        return Ok(Found::Stored(stored));
    }
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE packed IS NOT NULL LIMIT $1) s",
            &[&(TRAIN_AFTER as i64)],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    if (stored as usize) < TRAIN_AFTER {
        return Ok(Found::TooFewPayloads);
    }
    // Any stored payloads will do as samples; the first a scan meets cost no sort.
    let rows = client
        .query(
            "SELECT packed FROM events WHERE packed IS NOT NULL LIMIT $1",
            &[&(TRAINING_SAMPLES as i64)],
        )
        .await
        .map_err(pg_error)?;
    Ok(Found::Samples(
        rows.iter()
            .filter_map(|row| row.try_get::<_, &[u8]>(0).ok())
            // A payload that does not unpack (damaged) is no sample.
            .filter_map(|packed| payload_text(packed).ok())
            .collect(),
    ))
}

/// Stores `trained` as the database's dictionary, unless another replica stored one since
/// [`stored_or_samples`] looked: then that one. The dictionary new payloads are packed with.
pub(super) async fn store_unless_stored(
    client: &mut Client,
    trained: &[u8],
) -> Result<(DictionaryId, Trained), StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&STORING_LOCK])
        .await
        .map_err(pg_error)?;
    if let Some(stored) = load(&tx).await? {
        return Ok((stored, Trained::Elsewhere));
    }
    tx.execute(
        "INSERT INTO payload_dictionaries (bytes, created_at) VALUES ($1, $2)",
        &[&trained, &now()],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)?;
    Ok((register_dictionary(trained), Trained::Here))
}

/// Who made the dictionary [`store_unless_stored`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trained {
    /// This replica trained and stored it.
    Here,
    /// Another replica stored one first.
    Elsewhere,
}

/// Makes sure the payloads in column `packed` of `rows` can be unpacked here: when one was
/// packed with a dictionary this process does not know (another replica trained it since
/// this one connected), the stored dictionaries are loaded.
pub(super) async fn know_those_of(
    client: &impl GenericClient,
    rows: &[Row],
    packed: usize,
) -> Result<(), StoreError> {
    let unknown = rows.iter().any(|row| {
        row.try_get::<_, Option<&[u8]>>(packed)
            .ok()
            .flatten()
            .and_then(dictionary_of)
            .is_some_and(|id| !is_registered(id))
    });
    if unknown {
        load(client).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{store_unless_stored, stored_or_samples, Found, Trained};
    use crate::store::dictionary_checks::{
        dictionary_is_trained_once, dictionary_payloads_read_back, store_chats,
    };
    use crate::store::payload::{forget_dictionary, is_registered, train_dictionary, TRAIN_AFTER};
    use crate::store::postgres::test_support::temp_store;
    use crate::store::postgres::write::tests::number;
    use crate::store::{AdminStore, Store, WriteStore};

    #[test]
    fn replicas_that_train_at_once_store_one_dictionary_and_both_pack_with_it() {
        let (store, db) = temp_store();
        let other = db.connect();
        let project = store.create_project("p").unwrap();
        store_chats(&store, &project, "a", TRAIN_AFTER, "postgres");
        // this replica takes its samples and trains (outside any database call)...
        let Found::Samples(samples) = store.with_client(stored_or_samples).unwrap() else {
            panic!("enough payloads to train on");
        };
        let ours = train_dictionary(&samples).unwrap();
        // ...while the other trains and stores first
        assert!(other.train_payload_dictionary().unwrap());
        let theirs = other.payload_dictionary().expect("trained");
        let (id, trained) = store
            .with_client(async |client| store_unless_stored(client, &ours).await)
            .unwrap();
        assert_eq!((id, trained), (theirs, Trained::Elsewhere));
        assert_eq!(
            number(&store, "SELECT COUNT(*) FROM payload_dictionaries"),
            1
        );
        assert!(!store.train_payload_dictionary().unwrap());
        assert_eq!(store.payload_dictionary(), Some(theirs));
    }

    #[test]
    fn a_dictionary_is_trained_once_and_every_replica_reads_and_takes_it_up() {
        let (store, db) = temp_store();
        // a second replica, connected before the first trains
        let other = db.connect();
        let project = dictionary_is_trained_once(&store, "postgres");
        let id = store.payload_dictionary().expect("trained");
        assert!(
            !other.train_payload_dictionary().unwrap(),
            "not trained twice"
        );
        assert_eq!(
            other.payload_dictionary(),
            Some(id),
            "taken up by the other"
        );

        // a replica that has not seen it (as a process started before it was trained) reads
        // the payloads packed with it: the dictionary is fetched from the database
        forget_dictionary(id);
        dictionary_payloads_read_back(&other, &project, "postgres");
        assert!(is_registered(id));

        // a replica started later (or after `agentops migrate` brought a SQLite store's
        // dictionary) packs with it from the start
        forget_dictionary(id);
        let later = db.connect();
        assert_eq!(later.payload_dictionary(), Some(id));
        dictionary_payloads_read_back(&later as &dyn Store, &project, "postgres");
    }
}
