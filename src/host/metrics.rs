//! The flow's counters as Envoy stats (`/stats`, `/stats/prometheus`).

use crate::denial::Denial;
use crate::flow::host::{denied_counter_name, rule_counter_names, Counter, Metrics};
use crate::rules::RuleId;
use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

/// Metric ids, defined once per VM, in `Counter::ALL` and `Denial::ALL` order.
pub struct HostMetrics {
    counters: Vec<Option<u32>>,
    denied: Vec<Option<u32>>,
    /// (allowed, denied) by `RuleId` of the configuration in force.
    rules: Vec<(Option<u32>, Option<u32>)>,
}

// Host-call audit: Envoy takes a metric name as a stat name (its tag
// extraction may read it, which is what `stats_tags` are for); ours are fixed
// ASCII names.
fn define(name: &str) -> Option<u32> {
    hostcalls::define_metric(MetricType::Counter, name).ok()
}

fn bump(id: Option<u32>) {
    if let Some(id) = id {
        // A failed increment must never fail the request.
        let _ = hostcalls::increment_metric(id, 1);
    }
}

impl HostMetrics {
    pub fn define() -> HostMetrics {
        HostMetrics {
            counters: Counter::ALL.iter().map(|c| define(c.name())).collect(),
            denied: Denial::ALL
                .iter()
                .map(|d| define(&denied_counter_name(*d)))
                .collect(),
            rules: Vec::new(),
        }
    }

    /// Defines the counters of a configuration's rules (Envoy hands back
    /// the same id for a name defined before, so a reload keeps counting).
    pub fn define_rules<'a>(&mut self, names: impl Iterator<Item = &'a str>) {
        self.rules = names
            .map(|name| {
                let (allowed, denied) = rule_counter_names(name);
                (define(&allowed), define(&denied))
            })
            .collect();
    }
}

impl Metrics for HostMetrics {
    fn count(&self, counter: Counter) {
        bump(self.counters.get(counter.index()).copied().flatten());
    }

    fn denied(&self, denial: Denial) {
        // `Denial::ALL` is derived in declaration order, the discriminants'.
        bump(self.denied.get(denial as usize).copied().flatten());
    }

    fn ruled(&self, rule: RuleId, allowed: bool) {
        if let Some((on_allowed, on_denied)) = self.rules.get(rule.0) {
            bump(if allowed { *on_allowed } else { *on_denied });
        }
    }
}
