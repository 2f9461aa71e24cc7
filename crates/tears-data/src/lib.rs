//! # tears-data
//!
//! Datasets for scrutable recommendation: loaders for MovieLens (100K, 1M, latest/20M/25M),
//! Netflix Prize and Goodbooks-10k, preprocessing, the two evaluation protocols of the TEARS
//! benchmarks (`random-holdout`, `summary-window`), splits saved as plain CSV/JSON, sparse
//! interaction matrices with dense burn mini-batches, stored summaries, and a seeded synthetic
//! dataset.
//!
//! ```
//! use tears_data::{prepare, DatasetName, Interactions, PrepareOptions, Values};
//!
//! let prepared = prepare(DatasetName::Synthetic, &PrepareOptions::default())?;
//! let split = &prepared.split;
//! let train = Interactions::from_rows(&split.train, split.n_items(), Values::Binary { positive_above: 3.5 })?;
//! assert_eq!(train.n_rows(), split.meta.counts.train_users);
//! assert_eq!(train.nnz(), split.meta.counts.train_interactions);
//! # Ok::<(), tears_data::DataError>(())
//! ```

pub mod dataset;
pub mod error;
pub mod io;
pub mod loaders;
pub mod named;
pub mod preprocess;
pub mod shard;
pub mod sparse;
pub mod split;
mod split_io;
pub mod summaries;
pub mod synthetic;

pub use dataset::{Dataset, DatasetBuilder, DatasetStats, Event, Item, LoadOptions};
pub use error::{DataError, Result};
pub use named::{DatasetName, PrepareOptions, Prepared, default_data_dir, prepare, shared_data_dir};
pub use preprocess::{POSITIVE_ABOVE, Preprocess};
pub use sparse::{Interactions, Values};
pub use split::{EvalSet, EvalUsers, Protocol, Rating, Split, SplitConfig, UserRows, WindowEntry, make_split};
pub use summaries::StoredSummaries;
