//! What choosing a replica adds to a request on a provider whose `api_base_url` lists
//! replicas: the session's key (FNV-1a of its id), the rendezvous order over the
//! replicas with their state (one lock), and the in-flight lease taken and released.
//!
//! * `replicas/key_session`: the key of a Claude Code session id.
//! * `replicas/order_N`: ordering N replicas for one key.
//! * `replicas/order_lease_4`: order 4 replicas, take and drop the first's lease.
//! * `replicas/hold_during`: tie a lease to an answer's body (the answer is rebuilt
//!   around a wrapping body), the rest of the per-request cost.
//!
//! The goal is well under a microsecond. `cargo bench --bench replicas`

use ccr_setup::config::Replica;
use ccr_setup::proxy::replicas::{session_key, ReplicaTable};
use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;

const SESSION: &str = "0f3c1d2e-0000-4000-8000-000000000001";

fn replicas(n: usize) -> Vec<Replica> {
    (0..n)
        .map(|i| Replica::new(format!("http://10.0.0.{i}:8000/v1/chat/completions")))
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("replicas");
    g.bench_function("key_session", |b| {
        b.iter(|| session_key(black_box(SESSION)))
    });
    let table = ReplicaTable::default();
    for n in [2, 4, 16] {
        let rs = replicas(n);
        let key = session_key(SESSION);
        g.bench_function(format!("order_{n}"), |b| {
            b.iter(|| table.order(black_box(key), &rs, Some(4)).indexes().next())
        });
    }
    let rs = replicas(4);
    g.bench_function("order_lease_4", |b| {
        b.iter(|| {
            let order = table.order(session_key(black_box(SESSION)), &rs, Some(4));
            let first = order.indexes().next().unwrap();
            let lease = table.lease(&rs[first]);
            table.succeeded(&rs[first]);
            drop(lease);
        })
    });
    g.bench_function("hold_during", |b| {
        b.iter_batched(
            || {
                let answer = http::Response::new(reqwest::Body::from("data: {}\n\n"));
                (reqwest::Response::from(answer), table.lease(&rs[0]))
            },
            |(answer, lease)| lease.hold_during(answer),
            criterion::BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
