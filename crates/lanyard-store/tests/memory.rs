//! The conformance suite on `MemoryStore`, with an injected clock.

#![allow(clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use lanyard_store::testsuite::Harness;
use lanyard_store::{Clock, ManualClock, MemoryStore, StoreConfig, Timestamp, TokenStore};

struct MemoryHarness {
    clock: ManualClock,
    store: Mutex<Option<MemoryStore>>,
}

impl MemoryHarness {
    async fn new() -> Self {
        Self {
            clock: ManualClock::new(Timestamp::from_millis(1_764_000_000_000)),
            store: Mutex::new(None),
        }
    }
}

#[async_trait]
impl Harness for MemoryHarness {
    async fn store(&self, config: StoreConfig) -> Arc<dyn TokenStore> {
        let mut slot = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let store = slot.get_or_insert_with(|| {
            MemoryStore::with_clock(config, Arc::new(self.clock.clone()))
                .unwrap_or_else(|e| panic!("{e}"))
        });
        Arc::new(store.clone())
    }

    async fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    fn now(&self) -> Timestamp {
        self.clock.now()
    }
}

lanyard_store::conformance_suite!(MemoryHarness::new());
