//! Keeping the DHCP view as current as the store: before a request is decided, the store's caches
//! catch up ([`Resolver::catch_up`]) and, when a table the view is built from changed, the view
//! is rebuilt first — so a `chdef` of a MAC, a `nodeset`, or an OMAPI host created just before
//! the request are in its answer (read your writes).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing::{info, warn};

use super::config::{self, DhcpView};
use crate::store::resolver::{Resolver, Ticket};
use crate::store::watch::ChangeBatch;

/// Builds the view and knows when it is out of date.
pub struct ViewKeeper {
    resolver: Arc<Resolver>,
    host: String,
    /// The appliance whose view this is (`None`: it answers every node).
    me: Option<Arc<crate::appliance::Identity>>,
    /// Bumped by [`ViewKeeper::changed`] for each batch touching [`config::DEPENDS_ON`].
    wanted: AtomicU64,
    /// The value of `wanted` the view in use was built for.
    built: AtomicU64,
    /// One rebuild at a time; requests arriving meanwhile wait for it and use its result.
    rebuilding: tokio::sync::Mutex<()>,
}

impl ViewKeeper {
    /// Notes a request's arrival (see [`Resolver::ticket`]).
    pub fn ticket(&self) -> Ticket {
        self.resolver.ticket()
    }
}

impl ViewKeeper {
    /// `host`: this machine's name (for `site.master` defaults in the view).
    pub fn new(resolver: Arc<Resolver>, host: String) -> Arc<ViewKeeper> {
        ViewKeeper::for_appliance(resolver, host, None)
    }

    /// The keeper of appliance `me`'s view: only the nodes it serves are answered.
    pub fn for_appliance(
        resolver: Arc<Resolver>,
        host: String,
        me: Option<Arc<crate::appliance::Identity>>,
    ) -> Arc<ViewKeeper> {
        let k = Arc::new(ViewKeeper {
            resolver: resolver.clone(),
            host,
            me,
            wanted: AtomicU64::new(0),
            built: AtomicU64::new(0),
            rebuilding: tokio::sync::Mutex::new(()),
        });
        let weak = Arc::downgrade(&k);
        resolver.on_change(Box::new(move |b| {
            if let Some(k) = weak.upgrade() {
                k.changed(b);
            }
        }));
        k
    }

    /// The change listener: marks the view stale when `batch` touches a table it is built from.
    pub fn changed(&self, batch: &ChangeBatch) {
        if batch.touches(config::DEPENDS_ON) {
            self.wanted.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Builds a view now (blocking: call from the blocking pool). Logs its problems.
    pub fn build(&self) -> Result<DhcpView, crate::store::StoreError> {
        let view = config::build_for(&self.resolver, &self.host, self.me.as_deref())?;
        for p in &view.problems {
            warn!("DHCP configuration: {p}");
        }
        Ok(view)
    }

    /// Marks the view built for the current store state: what [`ViewKeeper::build`] just built
    /// when the store was caught up before building.
    pub fn mark_built(&self, at: u64) {
        self.built.store(at, Ordering::SeqCst);
    }

    /// The current "wanted" count, to pass to [`ViewKeeper::mark_built`] (read it before building).
    pub fn wanted(&self) -> u64 {
        self.wanted.load(Ordering::SeqCst)
    }

    /// Catches the store up (for a request that `arrived`, or now) and, when the view is out of
    /// date, rebuilds it and hands it to `install` before returning. Cheap when nothing changed: one commit-position question
    /// and two atomic loads. A view that cannot be built leaves the old one in use (logged).
    pub async fn refresh(
        self: &Arc<Self>,
        arrived: Option<Ticket>,
        install: impl FnOnce(DhcpView),
    ) {
        let caught = match arrived {
            Some(t) => self.resolver.catch_up_since(t),
            None => self.resolver.catch_up(),
        };
        if let Err(e) = caught {
            warn!("DHCP: cannot read the change log: {e}");
        }
        if self.built.load(Ordering::SeqCst) == self.wanted.load(Ordering::SeqCst) {
            return;
        }
        let _one = self.rebuilding.lock().await;
        let want = self.wanted.load(Ordering::SeqCst);
        if self.built.load(Ordering::SeqCst) == want {
            // Rebuilt by the request we waited for.
            return;
        }
        let me = self.clone();
        match tokio::task::spawn_blocking(move || me.build()).await {
            Ok(Ok(v)) => {
                info!(
                    hosts = v.hosts.len(),
                    subnets = v.subnets.len(),
                    "DHCP configuration reloaded"
                );
                install(v);
            }
            Ok(Err(e)) => warn!("DHCP configuration not reloaded: {e}"),
            Err(e) => warn!("DHCP configuration not reloaded: {e}"),
        }
        self.built.store(want, Ordering::SeqCst);
    }
}
