//! The API state of an agent with no XDP program to drop in: a store, and
//! a blocklist kept in memory (`MemoryKernel`) that protects the API's
//! clients. Served by the hostile-API suite and by the `api_query` fuzz
//! target, which includes this file by its path.

use std::sync::{Arc, Mutex};

use nta_agent::{
    api::{ApiState, Mitigation, auth::Auth},
    mitigate::{
        blocklist::{Blocklist, Protected},
        memory::MemoryKernel,
        protect::ApiClients,
    },
    stats::LiveView,
    store::Store,
};

/// `store` served under `auth`, with an in-memory blocklist restored from
/// the store.
pub fn state(store: Arc<Store>, auth: Auth) -> ApiState {
    let clients = Arc::<ApiClients>::default();
    let (list, _) = Blocklist::restore(
        Box::new(MemoryKernel::default()),
        store.clone(),
        Protected {
            clients: clients.clone(),
            ..Protected::default()
        },
        jiff::Timestamp::now(),
    )
    .expect("blocklist");
    ApiState {
        mitigation: Mitigation {
            blocklist: Some(Arc::new(Mutex::new(list))),
            clients,
            ..Mitigation::default()
        },
        ..ApiState::new(store, LiveView::default(), auth)
    }
}
