//! Instructions per request on the filter core's hot path, for comparing
//! configurations without a quiet machine (`make bench-instructions` runs it
//! under valgrind's callgrind: wall-clock benches on a shared machine move
//! by more than the differences they are after).
//!
//! `flow_cost VARIANT N`: sets up `HotFlow` for VARIANT (rules_none,
//! groups_claim_only, rules_20), then serves N requests. The difference
//! between the instruction counts of N and of 0 requests, divided by N, is
//! the cost of one request (the header sets are built before the loop and
//! count with it; they are the same for every variant).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use alb_oidc::flow::Verdict;
use alb_oidc_testkit::hot_flow::{HotFlow, Variant};
use std::hint::black_box;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(name), Some(n)) = (
        args.get(1),
        args.get(2).and_then(|n| n.parse::<usize>().ok()),
    ) else {
        panic!("usage: flow_cost rules_none|groups_claim_only|rules_20 N");
    };
    let variant = Variant::ALL
        .into_iter()
        .find(|v| v.name() == name)
        .expect("a variant name");
    let mut hot = HotFlow::new(variant);
    let mut headers: Vec<_> = (0..n).map(|_| hot.headers()).collect();
    for h in &mut headers {
        let verdict = hot.request(h);
        assert!(matches!(verdict, Verdict::Allow { .. }), "{verdict:?}");
        black_box(verdict.headers().count());
    }
}
