//! One DataLoader per relation, built per request with the viewer, so each
//! batch's SQL carries the viewer's access rule. They call the same service
//! functions as every other transport.
//!
//! The fetches run in the request's own task, once it is blocked (see
//! `batch`), so there is no batching delay and no batch is split.

use std::{collections::HashMap, sync::Arc, time::Duration};

use async_graphql::dataloader::{DataLoader, HashMapCache, Loader};
use uuid::Uuid;

use crate::{
    accounts::{Accounts, User},
    audit::{self, AuditEvent, Served},
    db::Db,
    doctors::{self, Doctor},
    graphql::{batch::FetchQueue, error::LoadError},
    mappings::{self, Mapping},
    paging::{Cursor, Limit, Page},
    patients::{self, Patient},
    viewer::Viewer,
};

type LoadResult<V> = Result<HashMap<Uuid, V>, LoadError>;

/// Values are shared: a loader's result is cloned for every field waiting on
/// it, and an `Arc` clone is a counter increment rather than a deep copy.
fn shared<T>(map: HashMap<Uuid, T>) -> HashMap<Uuid, Arc<T>> {
    map.into_iter().map(|(k, v)| (k, Arc::new(v))).collect()
}

fn shared_lists<T>(map: HashMap<Uuid, Vec<T>>) -> HashMap<Uuid, Arc<Vec<Arc<T>>>> {
    map.into_iter()
        .map(|(k, v)| (k, Arc::new(v.into_iter().map(Arc::new).collect())))
        .collect()
}

pub struct Loaders {
    /// Cached for the request: one user shows up as the creator or assigner
    /// of many rows, at several levels of a nested read.
    pub users: DataLoader<Queued<UserById>, HashMapCache>,
    pub patients: DataLoader<Queued<PatientById>>,
    pub doctors: DataLoader<Queued<DoctorById>>,
    pub doctors_by_patient: DataLoader<Queued<DoctorsByPatient>>,
    pub mappings_by_patient: DataLoader<Queued<MappingsByPatient>>,
    pub patients_by_doctor: DataLoader<Queued<PatientsByDoctor>>,
    pub mappings_by_doctor: DataLoader<Queued<MappingsByDoctor>>,
    pub access_logs: DataLoader<Queued<AccessLogs>>,
    pub access_log_counts: DataLoader<Queued<AccessLogCounts>>,
}

/// One page of a patient's access log: the patient, the page's size, and
/// the event it starts after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LogPage {
    pub patient: Uuid,
    pub limit: Limit,
    pub before: Option<i64>,
}

/// A loader whose fetches run in the request's `FetchQueue`, telling it when
/// a fetch has taken its keys (see `batch`).
pub struct Queued<L> {
    inner: L,
    queue: FetchQueue,
}

impl<K, L> Loader<K> for Queued<L>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    L: Loader<K>,
{
    type Value = L::Value;
    type Error = L::Error;

    async fn load(&self, keys: &[K]) -> Result<HashMap<K, L::Value>, L::Error> {
        self.queue.taken();
        self.inner.load(keys).await
    }
}

fn loader<T: Send + Sync + 'static>(inner: T, queue: &FetchQueue) -> DataLoader<Queued<T>> {
    let inner = Queued {
        inner,
        queue: queue.clone(),
    };
    DataLoader::new(inner, queue.spawner()).delay(Duration::ZERO)
}

impl Loaders {
    /// `served` gathers every patient the patient loaders return.
    pub fn new(db: &Db, accounts: &Accounts, viewer: &Viewer, queue: &FetchQueue, served: &Served) -> Self {
        let scoped = || Scoped {
            db: db.clone(),
            viewer: viewer.clone(),
        };
        Self {
            users: DataLoader::with_cache(
                Queued {
                    inner: UserById(accounts.clone()),
                    queue: queue.clone(),
                },
                queue.spawner(),
                HashMapCache::default(),
            )
            .delay(Duration::ZERO),
            patients: loader(PatientById(scoped(), served.clone()), queue),
            doctors: loader(DoctorById(db.clone()), queue),
            doctors_by_patient: loader(DoctorsByPatient(scoped()), queue),
            mappings_by_patient: loader(MappingsByPatient(scoped()), queue),
            patients_by_doctor: loader(PatientsByDoctor(scoped(), served.clone()), queue),
            mappings_by_doctor: loader(MappingsByDoctor(scoped()), queue),
            access_logs: loader(AccessLogs(scoped()), queue),
            access_log_counts: loader(AccessLogCounts(scoped()), queue),
        }
    }
}

/// The database and the viewer whose access rule a loader applies.
pub struct Scoped {
    db: Db,
    viewer: Viewer,
}

pub struct UserById(Accounts);
pub struct PatientById(Scoped, Served);
pub struct DoctorById(Db);
pub struct DoctorsByPatient(Scoped);
pub struct MappingsByPatient(Scoped);
pub struct PatientsByDoctor(Scoped, Served);
pub struct MappingsByDoctor(Scoped);
pub struct AccessLogs(Scoped);
pub struct AccessLogCounts(Scoped);

impl Loader<Uuid> for UserById {
    type Value = Arc<User>;
    type Error = LoadError;
    async fn load(&self, ids: &[Uuid]) -> LoadResult<Arc<User>> {
        self.0.by_ids(ids).await.map(shared).map_err(LoadError::from)
    }
}

impl Loader<Uuid> for PatientById {
    type Value = Arc<Patient>;
    type Error = LoadError;
    async fn load(&self, ids: &[Uuid]) -> LoadResult<Arc<Patient>> {
        let found = patients::by_ids(&self.0.db, &self.0.viewer, ids).await?;
        self.1.add(found.keys().copied());
        Ok(shared(found))
    }
}

impl Loader<Uuid> for DoctorById {
    type Value = Arc<Doctor>;
    type Error = LoadError;
    async fn load(&self, ids: &[Uuid]) -> LoadResult<Arc<Doctor>> {
        doctors::by_ids(&self.0, ids).await.map(shared).map_err(LoadError::from)
    }
}

impl Loader<Uuid> for DoctorsByPatient {
    type Value = Arc<Vec<Arc<Doctor>>>;
    type Error = LoadError;
    async fn load(&self, ids: &[Uuid]) -> LoadResult<Arc<Vec<Arc<Doctor>>>> {
        doctors::of_patients(&self.0.db, &self.0.viewer, ids)
            .await
            .map(shared_lists)
            .map_err(LoadError::from)
    }
}

impl Loader<Uuid> for MappingsByPatient {
    type Value = Arc<Vec<Arc<Mapping>>>;
    type Error = LoadError;
    async fn load(&self, ids: &[Uuid]) -> LoadResult<Arc<Vec<Arc<Mapping>>>> {
        mappings::of_patients(&self.0.db, &self.0.viewer, ids)
            .await
            .map(shared_lists)
            .map_err(LoadError::from)
    }
}

impl Loader<Uuid> for PatientsByDoctor {
    type Value = Arc<Vec<Arc<Patient>>>;
    type Error = LoadError;
    async fn load(&self, ids: &[Uuid]) -> LoadResult<Arc<Vec<Arc<Patient>>>> {
        let found = patients::of_doctors(&self.0.db, &self.0.viewer, ids).await?;
        self.1.add(found.values().flatten().map(|patient| patient.id));
        Ok(shared_lists(found))
    }
}

impl Loader<Uuid> for MappingsByDoctor {
    type Value = Arc<Vec<Arc<Mapping>>>;
    type Error = LoadError;
    async fn load(&self, ids: &[Uuid]) -> LoadResult<Arc<Vec<Arc<Mapping>>>> {
        mappings::of_doctors(&self.0.db, &self.0.viewer, ids)
            .await
            .map(shared_lists)
            .map_err(LoadError::from)
    }
}

impl Loader<LogPage> for AccessLogs {
    type Value = Arc<Page<AuditEvent>>;
    type Error = LoadError;
    async fn load(&self, keys: &[LogPage]) -> Result<HashMap<LogPage, Self::Value>, LoadError> {
        // Pages of one size and start share a statement (usually all of them).
        let mut groups: HashMap<(Limit, Option<i64>), Vec<Uuid>> = HashMap::new();
        for key in keys {
            groups.entry((key.limit, key.before)).or_default().push(key.patient);
        }
        let mut pages = HashMap::new();
        for ((limit, before), patients) in groups {
            let logs =
                audit::access_logs(&self.0.db, &self.0.viewer, &patients, limit, before.map(Cursor::Seq)).await?;
            for (patient, page) in logs {
                pages.insert(LogPage { patient, limit, before }, Arc::new(page));
            }
        }
        Ok(pages)
    }
}

impl Loader<Uuid> for AccessLogCounts {
    type Value = i64;
    type Error = LoadError;
    async fn load(&self, ids: &[Uuid]) -> LoadResult<i64> {
        Ok(audit::access_log_counts(&self.0.db, &self.0.viewer, ids).await?)
    }
}
