//! Data-parallel training: several workers, each with the whole model, each taking a disjoint
//! slice of every mini-batch, their gradients summed before every optimiser step.
//!
//! Everything the trainers need from a collective library sits behind [`GradientSync`], so the
//! transport stays in this module. Two implementations ship: [`Workers::Solo`] (one process,
//! nothing to sum) and [`Workers::Collective`], worker processes over TCP that sum through worker
//! 0 ([`CollectivePeer`]). burn-collective 0.21 was the plan and was tried first; across
//! processes it pairs gradients by parameter ids (drawn afresh in each process) and its
//! all-reduce between nodes hangs from the second call on, so it is not used.
//!
//! **Why the result does not depend on the worker count.** Every worker draws the same batches
//! in the same order (the order is seeded by the run's seed and the epoch). Worker `r` of `W`
//! takes the contiguous rows `[r·n/W, (r+1)·n/W)` of a batch of `n`, weights its loss by its
//! share `n_r / n` and the weighted gradients are summed: since every loss term is a mean over
//! the batch's users (or does not depend on the users at all), the sum is the gradient of the
//! whole batch. The per-user noise (dropout masks, reparameterisation draws) is keyed by the
//! user's row in the whole batch ([`crate::NoiseSource::set_row_offset`]), so a user gets the
//! same draws whichever worker holds it. What remains is float summation order: one step agrees
//! with the single-process step to about 1e-6.
//!
//! ```
//! use tears_vae::parallel::{GradientSync, Workers};
//! let solo = Workers::Solo;
//! assert_eq!((solo.rank(), solo.workers()), (0, 1));
//! assert_eq!(solo.slice(10), 0..10);
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::module::{AutodiffModule, ModuleVisitor, Param, ParamId};
use burn::optim::GradientsParams;
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Tensor, TensorData};

use crate::error::{Result, VaeError};

/// What a trainer needs from its peers: which share of each batch is its own, and the sums of
/// gradients and logged values over all workers.
pub trait GradientSync {
    /// This worker's index, `0..workers()`.
    fn rank(&self) -> usize;
    /// The number of workers.
    fn workers(&self) -> usize;
    /// The positions of this worker's rows in a batch of `n` rows: a contiguous range; the
    /// ranges of all workers are disjoint and cover `0..n`.
    fn slice(&self, n: usize) -> Range<usize> {
        let (w, r) = (self.workers().max(1), self.rank());
        (r * n / w)..((r + 1) * n / w)
    }
    /// The element-wise sum of every worker's `grads` of `module`'s parameters (each worker gets
    /// the sum back).
    ///
    /// # Errors
    /// A failed collective operation.
    fn sum_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        grads: GradientsParams,
        module: &M,
        device: &B::Device,
    ) -> Result<GradientsParams>;
    /// The element-wise sum of every worker's `values`.
    ///
    /// # Errors
    /// A failed collective operation.
    fn sum_values(&self, values: &[f64]) -> Result<Vec<f64>>;
    /// Ends this worker's membership (a later training in the same process joins afresh).
    ///
    /// # Errors
    /// A failed collective operation.
    fn finish(&self) -> Result<()>;
}

/// How a training run is spread over processes.
#[derive(Debug, Clone, Default)]
pub enum Workers {
    /// One process trains on whole batches.
    #[default]
    Solo,
    /// One of several processes joined through burn's collective operations.
    Collective(CollectivePeer),
}

impl Workers {
    /// Whether more than one worker trains.
    pub fn is_parallel(&self) -> bool {
        self.workers() > 1
    }
}

impl GradientSync for Workers {
    fn rank(&self) -> usize {
        match self {
            Workers::Solo => 0,
            Workers::Collective(p) => p.options.rank,
        }
    }

    fn workers(&self) -> usize {
        match self {
            Workers::Solo => 1,
            Workers::Collective(p) => p.options.workers,
        }
    }

    fn sum_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        grads: GradientsParams,
        module: &M,
        device: &B::Device,
    ) -> Result<GradientsParams> {
        match self {
            Workers::Solo => Ok(grads),
            Workers::Collective(p) => p.sum_gradients::<B, M>(grads, module, device),
        }
    }

    fn sum_values(&self, values: &[f64]) -> Result<Vec<f64>> {
        match self {
            Workers::Solo => Ok(values.to_vec()),
            Workers::Collective(p) => p.sum_values(values),
        }
    }

    fn finish(&self) -> Result<()> {
        match self {
            Workers::Solo => Ok(()),
            Workers::Collective(p) => p.finish(),
        }
    }
}

/// Where the workers of a run meet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectiveOptions {
    /// This worker's index, `0..workers`.
    pub rank: usize,
    /// The number of workers (processes).
    pub workers: usize,
    /// Worker 0's address: it listens there, the others connect to it.
    pub coordinator: SocketAddr,
    /// How long a worker waits for its peers (to connect, or to send their gradients).
    pub timeout: Duration,
}

impl CollectiveOptions {
    /// Worker `rank` of `workers`, meeting at `coordinator` (worker 0 listens there), with a
    /// ten-minute timeout.
    ///
    /// # Errors
    /// A rank outside `0..workers`, or fewer than two workers.
    pub fn new(rank: usize, workers: usize, coordinator: SocketAddr) -> Result<Self> {
        if workers < 2 {
            return Err(VaeError::Config(format!("data-parallel training needs at least 2 workers, not {workers}")));
        }
        if rank >= workers {
            return Err(VaeError::Config(format!("worker rank {rank} is outside 0..{workers}")));
        }
        Ok(CollectiveOptions { rank, workers, coordinator, timeout: Duration::from_secs(600) })
    }
}

/// One worker of a run (cheap to clone; clones share the connections).
///
/// The sum is a star through worker 0: every worker sends its flattened gradients, worker 0
/// adds them in rank order and sends the sum back, so every worker applies bit-identical
/// updates whatever the arrival order. (burn-collective 0.21, which this was first built on,
/// pairs the wrong tensors across processes and hangs from its second all-reduce between nodes;
/// see the module notes in `docs/scale.md`.)
#[derive(Debug, Clone)]
pub struct CollectivePeer {
    options: CollectiveOptions,
    links: Arc<Mutex<Option<Links>>>,
}

/// Worker 0 holds a stream to each other worker (index `rank - 1`); the others one to worker 0.
#[derive(Debug)]
struct Links {
    streams: Vec<TcpStream>,
}

fn io_error(what: &str, e: std::io::Error) -> VaeError {
    VaeError::Config(format!("data-parallel {what} failed: {e}"))
}

const HELLO: &[u8; 8] = b"tears-dp";

fn write_frame(stream: &mut TcpStream, values: &[f32]) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(8 + 4 * values.len());
    bytes.extend_from_slice(&(values.len() as u64).to_le_bytes());
    for v in values {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    stream.write_all(&bytes)?;
    stream.flush()
}

fn read_frame(stream: &mut TcpStream, expect: usize) -> std::io::Result<Vec<f32>> {
    let mut len = [0u8; 8];
    stream.read_exact(&mut len)?;
    let len = u64::from_le_bytes(len) as usize;
    if len != expect {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a peer sent {len} values where {expect} were expected (do all workers train the same model?)"),
        ));
    }
    let mut bytes = vec![0u8; 4 * len];
    stream.read_exact(&mut bytes)?;
    Ok(bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
}

impl CollectivePeer {
    /// A worker that joins its peers at its first sum.
    pub fn new(options: CollectiveOptions) -> Self {
        CollectivePeer { options, links: Arc::new(Mutex::new(None)) }
    }

    /// Where this worker meets its peers.
    pub fn options(&self) -> &CollectiveOptions {
        &self.options
    }

    fn connect(&self) -> Result<Links> {
        let o = &self.options;
        let header = |rank: usize| {
            let mut h = HELLO.to_vec();
            h.extend_from_slice(&(rank as u32).to_le_bytes());
            h.extend_from_slice(&(o.workers as u32).to_le_bytes());
            h
        };
        if o.rank == 0 {
            let listener = TcpListener::bind(o.coordinator)
                .map_err(|e| io_error(&format!("listening on {}", o.coordinator), e))?;
            listener.set_nonblocking(true).map_err(|e| io_error("listening", e))?;
            let started = Instant::now();
            let mut streams: Vec<Option<TcpStream>> = (1..o.workers).map(|_| None).collect();
            while streams.iter().any(Option::is_none) {
                match listener.accept() {
                    Ok((mut stream, _)) => {
                        stream.set_nonblocking(false).map_err(|e| io_error("accepting", e))?;
                        stream.set_read_timeout(Some(o.timeout)).map_err(|e| io_error("accepting", e))?;
                        let _ = stream.set_nodelay(true);
                        let mut h = [0u8; 16];
                        stream.read_exact(&mut h).map_err(|e| io_error("greeting a worker", e))?;
                        let rank = u32::from_le_bytes([h[8], h[9], h[10], h[11]]) as usize;
                        let workers = u32::from_le_bytes([h[12], h[13], h[14], h[15]]) as usize;
                        if &h[..8] != HELLO || workers != o.workers || rank == 0 || rank >= o.workers {
                            return Err(VaeError::Config(format!(
                                "data-parallel: a peer at {} announced worker {rank} of {workers}, but this run has {} workers",
                                o.coordinator, o.workers
                            )));
                        }
                        streams[rank - 1] = Some(stream);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        if started.elapsed() > o.timeout {
                            return Err(VaeError::Config(format!(
                                "data-parallel: only {} of {} workers joined at {} within {:?}",
                                1 + streams.iter().filter(|s| s.is_some()).count(),
                                o.workers,
                                o.coordinator,
                                o.timeout
                            )));
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                    Err(e) => return Err(io_error("accepting a worker", e)),
                }
            }
            Ok(Links { streams: streams.into_iter().flatten().collect() })
        } else {
            let started = Instant::now();
            let mut stream = loop {
                match TcpStream::connect(o.coordinator) {
                    Ok(s) => break s,
                    Err(e) if started.elapsed() > o.timeout => {
                        return Err(io_error(&format!("connecting to worker 0 at {}", o.coordinator), e));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(50)),
                }
            };
            stream.set_read_timeout(Some(o.timeout)).map_err(|e| io_error("connecting", e))?;
            let _ = stream.set_nodelay(true);
            stream.write_all(&header(o.rank)).map_err(|e| io_error("greeting worker 0", e))?;
            Ok(Links { streams: vec![stream] })
        }
    }

    /// The element-wise sum of every worker's `values`, added in rank order by worker 0.
    fn all_reduce(&self, values: Vec<f32>) -> Result<Vec<f32>> {
        let mut guard = self.links.lock().map_err(|_| VaeError::Config("the worker links are poisoned".into()))?;
        if guard.is_none() {
            *guard = Some(self.connect()?);
            tracing::info!(
                rank = self.options.rank,
                workers = self.options.workers,
                "joined the data-parallel workers"
            );
        }
        let Some(links) = guard.as_mut() else { unreachable!("just connected") };
        let n = values.len();
        let result = if self.options.rank == 0 {
            let mut sum = values;
            for stream in &mut links.streams {
                let theirs = read_frame(stream, n).map_err(|e| io_error("receiving gradients", e))?;
                for (s, t) in sum.iter_mut().zip(theirs) {
                    *s += t;
                }
            }
            for stream in &mut links.streams {
                write_frame(stream, &sum).map_err(|e| io_error("sending the sum", e))?;
            }
            sum
        } else {
            let stream = &mut links.streams[0];
            write_frame(stream, &values).map_err(|e| io_error("sending gradients", e))?;
            read_frame(stream, n).map_err(|e| io_error("receiving the sum", e))?
        };
        Ok(result)
    }

    /// Sums the gradients in one exchange: every gradient flattened and concatenated in the
    /// module's parameter order, which is the same in every process (parameter ids are drawn
    /// afresh in each process, so they cannot pair tensors across processes).
    fn sum_gradients<B: AutodiffBackend, M: AutodiffModule<B>>(
        &self,
        mut grads: GradientsParams,
        module: &M,
        device: &B::Device,
    ) -> Result<GradientsParams> {
        let mut gather = Gather::<B::InnerBackend> { grads: &mut grads, parts: Vec::new(), layout: Vec::new() };
        module.visit(&mut gather);
        let Gather { parts, layout, .. } = gather;
        let flat: Vec<f32> = if parts.is_empty() {
            Vec::new()
        } else {
            Tensor::cat(parts, 0)
                .into_data()
                .to_vec::<f32>()
                .map_err(|e| VaeError::Config(format!("cannot read the gradients: {e:?}")))?
        };
        let n = flat.len();
        let summed = self.all_reduce(flat)?;
        let summed = Tensor::<B::InnerBackend, 1>::from_data(TensorData::new(summed, [n]), device);
        let mut scatter = Scatter { grads: &mut grads, summed, layout: layout.into_iter(), offset: 0 };
        module.visit(&mut scatter);
        Ok(grads)
    }

    fn sum_values(&self, values: &[f64]) -> Result<Vec<f64>> {
        let summed = self.all_reduce(values.iter().map(|&v| v as f32).collect())?;
        Ok(summed.into_iter().map(f64::from).collect())
    }

    fn finish(&self) -> Result<()> {
        let mut guard = self.links.lock().map_err(|_| VaeError::Config("the worker links are poisoned".into()))?;
        *guard = None;
        Ok(())
    }
}

/// Takes the gradients out in parameter order, flattened.
struct Gather<'g, I: Backend> {
    grads: &'g mut GradientsParams,
    parts: Vec<Tensor<I, 1>>,
    layout: Vec<(ParamId, Vec<usize>)>,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Gather<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        if let Some(g) = self.grads.remove::<B::InnerBackend, D>(param.id) {
            let shape = g.dims().to_vec();
            self.parts.push(g.flatten::<1>(0, D - 1));
            self.layout.push((param.id, shape));
        }
    }
}

/// Puts the summed gradients back, in the same order.
struct Scatter<'g, I: Backend> {
    grads: &'g mut GradientsParams,
    summed: Tensor<I, 1>,
    layout: std::vec::IntoIter<(ParamId, Vec<usize>)>,
    offset: usize,
}

impl<B: AutodiffBackend> ModuleVisitor<B> for Scatter<'_, B::InnerBackend> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<B, D>>) {
        let next = self.layout.as_slice().first().map(|(id, _)| *id);
        if next != Some(param.id) {
            return;
        }
        let Some((id, shape)) = self.layout.next() else { return };
        let Ok(dims) = <[usize; D]>::try_from(shape) else { return };
        let n: usize = dims.iter().product();
        let part = self.summed.clone().slice(self.offset..self.offset + n).reshape(dims);
        self.offset += n;
        self.grads.register::<B::InnerBackend, D>(id, part);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_slices_of_all_workers_cover_a_batch_once() {
        for workers in [2usize, 3, 4] {
            for n in [0usize, 1, 2, 5, 7, 500] {
                let mut seen = vec![0u32; n];
                for rank in 0..workers {
                    let w = match CollectiveOptions::new(rank, workers, at(29500)) {
                        Ok(o) => Workers::Collective(CollectivePeer::new(o)),
                        Err(e) => panic!("{e}"),
                    };
                    for i in w.slice(n) {
                        seen[i] += 1;
                    }
                }
                assert!(seen.iter().all(|&c| c == 1), "{workers} workers, {n} rows: {seen:?}");
            }
        }
    }

    #[test]
    fn bad_layouts_are_refused() {
        assert!(CollectiveOptions::new(2, 2, at(1)).is_err());
        assert!(CollectiveOptions::new(0, 1, at(1)).is_err());
    }

    #[test]
    fn three_threads_sum_in_rank_order_and_refuse_a_mismatch() {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(0);
        let peers: Vec<CollectivePeer> = (0..3)
            .map(|r| match CollectiveOptions::new(r, 3, at(port)) {
                Ok(o) => CollectivePeer::new(CollectiveOptions { timeout: Duration::from_secs(3), ..o }),
                Err(e) => panic!("{e}"),
            })
            .collect();
        let sums: Vec<Result<Vec<f32>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = peers
                .iter()
                .enumerate()
                .map(|(r, p)| scope.spawn(move || p.all_reduce(vec![r as f32, 1.0, 0.5 * r as f32])))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| panic!("a worker thread panicked"))).collect()
        });
        for s in sums {
            assert_eq!(s.ok(), Some(vec![3.0, 3.0, 1.5]));
        }
        // A worker that sends another length is named as the problem.
        let results: Vec<Result<Vec<f32>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = peers
                .iter()
                .enumerate()
                .map(|(r, p)| scope.spawn(move || p.all_reduce(vec![1.0; if r == 2 { 4 } else { 3 }])))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_else(|_| panic!("a worker thread panicked"))).collect()
        });
        let message = results[0].as_ref().err().map(ToString::to_string).unwrap_or_default();
        assert!(message.contains("sent 4 values where 3 were expected"), "{message}");
    }
}
