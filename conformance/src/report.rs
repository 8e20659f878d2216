//! Test outcomes and the output format: one line per test, then `N passed, M failed, K skipped`.

/// The result of one test.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Passed; notes name checks that were not evaluated (Kubernetes-only).
    Pass {
        notes: Vec<String>,
    },
    Fail(String),
    Skip(String),
}

/// Counts and per-test results, in run order.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub results: Vec<(String, Outcome)>,
}

impl Summary {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|(_, o)| f(o)).count()
    }
    pub fn passed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Pass { .. }))
    }
    pub fn failed(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Fail(_)))
    }
    pub fn skipped(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Skip(_)))
    }
    /// The last line of the output.
    pub fn totals_line(&self) -> String {
        format!(
            "{} passed, {} failed, {} skipped",
            self.passed(),
            self.failed(),
            self.skipped()
        )
    }
}

/// One output line (newlines inside messages are flattened so the format stays line-based).
pub fn line(name: &str, outcome: &Outcome) -> String {
    let flat = |s: &str| s.replace(['\n', '\r'], " ");
    match outcome {
        Outcome::Pass { notes } if notes.is_empty() => format!("PASS {name}"),
        Outcome::Pass { notes } => format!("PASS {name} (note: {})", flat(&notes.join("; "))),
        Outcome::Fail(why) => format!("FAIL {name}: {}", flat(why)),
        Outcome::Skip(why) => format!("SKIP {name}: {}", flat(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_and_totals() {
        let mut s = Summary::default();
        s.results
            .push(("A".into(), Outcome::Pass { notes: vec![] }));
        s.results.push(("B".into(), Outcome::Fail("x\ny".into())));
        s.results.push((
            "C".into(),
            Outcome::Skip("unclaimed features: GRPCRoute".into()),
        ));
        assert_eq!(line("A", &s.results[0].1), "PASS A");
        assert_eq!(line("B", &s.results[1].1), "FAIL B: x y");
        assert_eq!(
            line("C", &s.results[2].1),
            "SKIP C: unclaimed features: GRPCRoute"
        );
        assert_eq!(s.totals_line(), "1 passed, 1 failed, 1 skipped");
    }
}
