//! The payload dictionaries of a database (see [`crate::store::payload`]), shared by every
//! replica: stored in `payload_dictionaries`, made known to the process when the store
//! connects, trained once (by whichever replica first finds enough payloads stored), and
//! fetched when a read meets payloads packed with a dictionary that another replica trained
//! after this one connected.

use agentops_core::timestamp::now;
use tokio_postgres::{Client, GenericClient, Row};

use super::pg_error;
use crate::store::payload::{
    dictionary_of, is_registered, payload_text, register_dictionary, train_dictionary,
    DictionaryId, TRAINING_SAMPLES, TRAIN_AFTER,
};
use crate::store::StoreError;

/// The advisory lock a replica trains under, so that replicas finding enough payloads at the
/// same time make one dictionary, not one each.
const TRAINING_LOCK: i64 = 0x6167_656e_7473_0002;

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

/// The dictionary new payloads are packed with: one another replica stored, or one trained
/// here on stored payloads once [`TRAIN_AFTER`] are; `None` before that, or while another
/// replica is training.
pub(super) async fn load_or_train(
    client: &mut Client,
) -> Result<Option<(DictionaryId, Trained)>, StoreError> {
    let tx = client.transaction().await.map_err(pg_error)?;
    let locked: bool = tx
        .query_one("SELECT pg_try_advisory_xact_lock($1)", &[&TRAINING_LOCK])
        .await
        .map_err(pg_error)?
        .get(0);
    if !locked {
        return Ok(None);
    }
    if let Some(stored) = load(&tx).await? {
        return Ok(Some((stored, Trained::Elsewhere)));
    }
    let stored: i64 = tx
        .query_one(
            "SELECT count(*) FROM (SELECT 1 FROM events WHERE packed IS NOT NULL LIMIT $1) s",
            &[&(TRAIN_AFTER as i64)],
        )
        .await
        .map_err(pg_error)?
        .get(0);
    if (stored as usize) < TRAIN_AFTER {
        return Ok(None);
    }
    // Any stored payloads will do as samples; the first a scan meets cost no sort.
    let rows = tx
        .query(
            "SELECT packed FROM events WHERE packed IS NOT NULL LIMIT $1",
            &[&(TRAINING_SAMPLES as i64)],
        )
        .await
        .map_err(pg_error)?;
    let samples: Vec<Vec<u8>> = rows
        .iter()
        .filter_map(|row| row.try_get::<_, &[u8]>(0).ok())
        // A payload that does not unpack (damaged) is no sample.
        .filter_map(|packed| payload_text(packed).ok())
        .collect();
    let bytes = match train_dictionary(&samples) {
        Ok(bytes) => bytes,
        // Too few or too uniform samples: try again later.
        Err(e) => {
            tracing::debug!(error = %e, "no payload dictionary trained");
            return Ok(None);
        }
    };
    tx.execute(
        "INSERT INTO payload_dictionaries (bytes, created_at) VALUES ($1, $2)",
        &[&bytes, &now()],
    )
    .await
    .map_err(pg_error)?;
    tx.commit().await.map_err(pg_error)?;
    Ok(Some((register_dictionary(&bytes), Trained::Here)))
}

/// Who made the dictionary [`load_or_train`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Trained {
    /// This call trained and stored it.
    Here,
    /// It was stored already (another replica trained it, or it came with migrated data).
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
    use crate::store::dictionary_checks::{
        dictionary_is_trained_once, dictionary_payloads_read_back,
    };
    use crate::store::payload::{forget_dictionary, is_registered};
    use crate::store::postgres::test_support::temp_store;
    use crate::store::{Store, WriteStore};

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
