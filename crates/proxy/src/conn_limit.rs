//! Per-bind cap on open client connections: a slot is taken at accept and given back when
//! the connection's task ends; without a free slot the connection is closed at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The open-connection count of one bind.
#[derive(Debug, Default, Clone)]
pub(crate) struct ConnCount(Arc<AtomicUsize>);

/// One open connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct ConnSlot(Arc<AtomicUsize>);

impl ConnCount {
    /// A slot when fewer than `max` connections are open.
    pub(crate) fn take(&self, max: usize) -> Option<ConnSlot> {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .ok()
            .map(|_| ConnSlot(self.0.clone()))
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_bounded_and_given_back() {
        let c = ConnCount::default();
        let a = c.take(2).unwrap();
        let _b = c.take(2).unwrap();
        assert!(c.take(2).is_none());
        drop(a);
        assert!(c.take(2).is_some());
    }
}
