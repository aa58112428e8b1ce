//! `list`: emits the input's listing ([`Lister`]: every file under `metas/<version>/` in
//! listing order, or the clips of `summary.json`) from worker 0, one page per activation at
//! timestamp = page number, so that metadata is read while the listing goes on.
//!
//! The listing must be whole: a storage failure after some pages would otherwise leave the
//! job planning part of the input. It goes out as one last entry marked `failed`, which
//! `read_meta` turns into [`crate::record::MetaOutcome::Failed`]: the planner then fails the
//! job without recording a plan, as for a metadata file that could not be read.

use std::time::Duration;

use timely::dataflow::operators::generic::operator::source;
use timely::dataflow::{ProbeHandle, Scope, Stream};

use crate::error::ShardError;
use crate::input::{Lister, PAGE_SIZE};
use crate::job::JobContext;
use crate::record::ListedFile;

/// How many pages the listing may run ahead of the stage that paces it (see [`BackPressure`]).
///
/// Everything between the listing and that stage (metadata read, clips planned, queued for
/// encoding) is then bounded by this many pages of [`PAGE_SIZE`] files, whatever the size of
/// the input, so memory stays flat. A few pages rather than one: listing a page is a storage
/// round trip, and the pages in hand keep the reader and the encoder busy while the next ones
/// are listed.
pub const AHEAD_PAGES: u64 = 8;

/// While held back, how long the listing waits before looking at its probe again: nothing
/// wakes a source when another operator's frontier moves, and a page takes far longer than
/// this to go through the pipeline, so polling this often costs nothing and delays little.
const BACK_OFF: Duration = Duration::from_millis(2);

/// Back pressure on the `list` source: page `n` goes out only once `probe` (placed after the
/// stage that paces the listing) has passed page `n - ahead_pages`, that is, once every page
/// before it has gone through that stage.
///
/// Only for a pipeline that completes a page without waiting for later ones: a stage that
/// needs the whole listing before it emits (the gathered planner) would wait forever.
#[derive(Clone, Debug)]
pub struct BackPressure {
    /// The probe whose frontier paces the listing.
    pub probe: ProbeHandle<u64>,
    /// How many pages the listing may run ahead of the probe.
    pub ahead_pages: u64,
}

impl BackPressure {
    /// Back pressure from `probe`, [`AHEAD_PAGES`] pages ahead.
    pub fn new(probe: ProbeHandle<u64>) -> Self {
        BackPressure {
            probe,
            ahead_pages: AHEAD_PAGES,
        }
    }

    /// Whether page `page` may go out now.
    pub fn allows(&self, page: u64) -> bool {
        match page.checked_sub(self.ahead_pages) {
            Some(behind) => !self.probe.less_than(&behind),
            None => true,
        }
    }
}

/// Builds the `list` source: worker 0 emits the listing in pages of [`PAGE_SIZE`] files, page
/// `n` at time `n`; the other workers nothing. With `back_pressure`, at most
/// [`BackPressure::ahead_pages`] pages ahead of its probe.
pub fn list_metas<'scope>(
    scope: Scope<'scope, u64>,
    lister: Lister,
    back_pressure: Option<BackPressure>,
    ctx: &JobContext,
) -> Stream<'scope, u64, Vec<ListedFile>> {
    list_pages(scope, lister, PAGE_SIZE, back_pressure, ctx)
}

/// [`list_metas`] with pages of `page_size` files.
pub fn list_pages<'scope>(
    scope: Scope<'scope, u64>,
    lister: Lister,
    page_size: usize,
    back_pressure: Option<BackPressure>,
    ctx: &JobContext,
) -> Stream<'scope, u64, Vec<ListedFile>> {
    let clock = ctx.clock.clone();
    let leader = scope.index() == 0;
    source(scope, "List", move |cap, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = leader.then_some(cap);
        let mut pages = lister.pages(page_size);
        let mut page_no = 0u64;
        move |output| {
            let Some(c) = cap.as_mut() else {
                return;
            };
            // held back: look again shortly, without listing further meanwhile
            if back_pressure.as_ref().is_some_and(|b| !b.allows(page_no)) {
                activator.activate_after(BACK_OFF);
                return;
            }
            let _t = clock.time("list");
            match pages.next() {
                Some(Ok(files)) => {
                    output.session(&*c).give_iterator(files.into_iter());
                    page_no += 1;
                    c.downgrade(&page_no);
                    activator.activate();
                }
                Some(Err(ShardError::Storage(e))) => {
                    let message = format!(
                        "the listing of {} stopped after {} files: {e} (the storage failed, not the input: the job stops instead of planning part of the input; once the storage is reachable, continue it with --resume, or an --append by appending again)",
                        pages.root(),
                        pages.listed()
                    );
                    tracing::error!("{message}");
                    let failed = ListedFile {
                        seq: pages.listed(),
                        rel_path: String::new(),
                        size: 0,
                        error: Some(message),
                        failed: true,
                    };
                    output.session(&*c).give(failed);
                    cap = None;
                }
                // the root (or summary.json) was checked before the dataflow started; it
                // vanished or changed since
                Some(Err(e)) => {
                    tracing::error!("{e}");
                    cap = None;
                }
                None => cap = None,
            }
        }
    })
}

#[cfg(test)]
mod tests;
