//! Data-parallel training across processes: two workers on the loopback, each taking half of
//! every batch, take the same steps as one process on whole batches.
//!
//! The test starts two copies of this test binary as the workers (the environment variable
//! `TEARS_PARALLEL_TEST_RANK` tells a copy which one it is), then runs the same training alone
//! in-process and compares.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use approx::assert_relative_eq;
use burn::backend::{Autodiff, Flex};
use tears_data::synthetic::SyntheticConfig;
use tears_data::{DatasetName, Interactions, PrepareOptions, Split, Values, prepare};
use tears_vae::trainer::Trainer;
use tears_vae::{
    Backbone, CollectiveOptions, CollectivePeer, GradientSync, Mode, MultVae, MultVaeConfig, RecVae, RecVaeConfig,
    TrainConfig, Trainable, Workers,
};

type A = Autodiff<Flex>;

const RANK: &str = "TEARS_PARALLEL_TEST_RANK";
const PORT: &str = "TEARS_PARALLEL_TEST_PORT";
const OUT: &str = "TEARS_PARALLEL_TEST_OUT";
const TEST: &str = "two_worker_processes_take_the_steps_of_one";

fn split() -> Split {
    // 181 training users: the one batch splits unevenly (90 + 91).
    let options = PrepareOptions {
        synthetic: SyntheticConfig { users: 230, items: 150, ..SyntheticConfig::default() },
        ..PrepareOptions::default()
    };
    prepare(DatasetName::Synthetic, &options).expect("synthetic split").split
}

/// What a run leaves to compare: the epoch's mean loss and the trained model's logits for the
/// first training users.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Outcome {
    loss: f64,
    logits: Vec<f32>,
}

fn logits<M: Trainable<A>>(model: M, split: &Split) -> Vec<f32>
where
    M::InnerModule: Backbone<Flex>,
{
    let device = Default::default();
    let x = Interactions::from_rows(&split.train, split.n_items(), Values::Binary { positive_above: 3.5 })
        .expect("interactions");
    let rows: Vec<usize> = (0..20).collect();
    let net = model.valid();
    let posterior = net.encode(x.to_tensor::<Flex>(&rows, &device), Mode::Eval);
    net.decode(posterior.mu, Mode::Eval).into_data().to_vec::<f32>().expect("f32 logits")
}

/// One epoch of Mult-VAE (one update: the batch holds every training user, dropout on) and one
/// of RecVAE (three encoder updates, a prior refresh, one decoder update).
fn run(workers: &Workers) -> Vec<Outcome> {
    let split = split();
    let device = Default::default();
    let n = split.train.len();
    let mut out = Vec::new();
    let config = TrainConfig { batch_size: n, ..TrainConfig::default() };
    let model = MultVae::<A>::new(&MultVaeConfig::default(), split.n_items(), 3, &device);
    let mut trainer = Trainer::new(model, &split, &config, &device).expect("trainer").with_workers(workers.clone());
    let loss = trainer.epoch(1).expect("mult-vae epoch").loss;
    out.push(Outcome { loss, logits: logits(trainer.into_model(), &split) });
    workers.finish().expect("finish");
    let config = TrainConfig { batch_size: 64, ..TrainConfig::default() };
    let model = RecVae::<A>::new(&RecVaeConfig::default(), split.n_items(), 3, &device);
    let mut trainer = Trainer::new(model, &split, &config, &device).expect("trainer").with_workers(workers.clone());
    let loss = trainer.epoch(1).expect("recvae epoch").loss;
    out.push(Outcome { loss, logits: logits(trainer.into_model(), &split) });
    workers.finish().expect("finish");
    out
}

fn free_port() -> u16 {
    // A free port for worker 0 to listen on.
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn worker(rank: usize) {
    let port: u16 = std::env::var(PORT).expect("port").parse().expect("port number");
    let out = std::env::var(OUT).expect("out");
    let coordinator = SocketAddr::from(([127, 0, 0, 1], port));
    let options = CollectiveOptions::new(rank, 2, coordinator).expect("options");
    let outcomes = run(&Workers::Collective(CollectivePeer::new(options)));
    let path = Path::new(&out).join(format!("worker-{rank}.json"));
    std::fs::write(path, serde_json::to_vec(&outcomes).expect("json")).expect("write outcome");
}

fn wait(mut children: Vec<Child>, limit: Duration) {
    let started = Instant::now();
    while !children.is_empty() {
        let mut still = Vec::new();
        for mut c in children {
            match c.try_wait().expect("wait") {
                Some(status) => assert!(status.success(), "a worker failed: {status}"),
                None => still.push(c),
            }
        }
        children = still;
        if started.elapsed() > limit {
            for c in &mut children {
                let _ = c.kill();
            }
            panic!("the workers did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn two_worker_processes_take_the_steps_of_one() {
    if let Ok(rank) = std::env::var(RANK) {
        worker(rank.parse().expect("rank"));
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<Child> = (0..2)
        .map(|rank| {
            Command::new(&exe)
                .args(["--exact", TEST, "--nocapture", "--test-threads=1"])
                .env(RANK, rank.to_string())
                .env(PORT, port.to_string())
                .env(OUT, dir.path())
                .spawn()
                .expect("start a worker")
        })
        .collect();
    let alone = run(&Workers::Solo);
    wait(children, Duration::from_secs(300));
    let read = |rank: usize| -> Vec<Outcome> {
        let bytes = std::fs::read(dir.path().join(format!("worker-{rank}.json"))).expect("worker outcome");
        serde_json::from_slice(&bytes).expect("outcome json")
    };
    let (w0, w1) = (read(0), read(1));
    for (model, ((a, b), c)) in ["mult-vae", "recvae"].iter().zip(alone.iter().zip(&w0).zip(&w1)) {
        // The workers hold the same model, and it is the single process's.
        assert_eq!(b.logits, c.logits, "{model}: the two workers disagree");
        assert_relative_eq!(a.loss, b.loss, max_relative = 1e-5);
        assert_eq!(a.logits.len(), b.logits.len());
        let scale = a.logits.iter().map(|v| v.abs()).fold(0.0f32, f32::max).max(1e-3);
        let worst = a.logits.iter().zip(&b.logits).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(worst <= 1e-4 * scale, "{model}: logits differ by {worst} (scale {scale})");
    }
    // The steps moved the models well beyond that tolerance: equal untrained models would prove
    // nothing.
    let split = split();
    let device = Default::default();
    let untrained = [
        logits(MultVae::<A>::new(&MultVaeConfig::default(), split.n_items(), 3, &device), &split),
        logits(RecVae::<A>::new(&RecVaeConfig::default(), split.n_items(), 3, &device), &split),
    ];
    for (u, a) in untrained.iter().zip(&alone) {
        let moved = u.iter().zip(&a.logits).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(moved > 1e-2, "training moved the logits by only {moved}");
    }
}
