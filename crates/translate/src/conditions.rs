//! Building Kubernetes `metav1.Condition` JSON values.

use serde_json::{json, Value};
use trellis_model::ObjectMeta;

/// `lastTransitionTime` when the object has no `creationTimestamp`: fixed so output is
/// deterministic.
pub const EPOCH: &str = "1970-01-01T00:00:00Z";

/// Generation and timestamp stamped on every condition of one object.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub generation: i64,
    pub time: String,
}

impl Stamp {
    pub fn of(meta: &ObjectMeta) -> Stamp {
        Stamp {
            generation: meta.generation(),
            time: meta
                .creation_timestamp
                .clone()
                .unwrap_or_else(|| EPOCH.to_string()),
        }
    }

    pub fn condition(
        &self,
        type_: &str,
        status: bool,
        reason: &str,
        message: impl Into<String>,
    ) -> Value {
        json!({
            "type": type_,
            "status": if status { "True" } else { "False" },
            "reason": reason,
            "message": message.into(),
            "observedGeneration": self.generation,
            "lastTransitionTime": self.time,
        })
    }
}

/// One condition before stamping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    pub type_: &'static str,
    pub status: bool,
    pub reason: &'static str,
    pub message: String,
}

impl Cond {
    pub fn new(
        type_: &'static str,
        status: bool,
        reason: &'static str,
        message: impl Into<String>,
    ) -> Cond {
        Cond {
            type_,
            status,
            reason,
            message: message.into(),
        }
    }

    pub fn stamp(&self, stamp: &Stamp) -> Value {
        stamp.condition(self.type_, self.status, self.reason, self.message.clone())
    }
}
