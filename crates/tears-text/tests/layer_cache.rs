//! Split forward passes and cached lower-layer states for top-n fine-tuning, on the tiny model.

use std::path::Path;

use approx::assert_abs_diff_eq;
use burn::backend::{Autodiff, Flex};
use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::tensor::backend::AutodiffBackend;
use tears_text::{EncoderOptions, FineTuning, SentenceEncoder, TextEncoder, TextError, testing};

type B = Flex;
type AD = Autodiff<Flex>;

const TEXTS: [&str; 4] = [
    "the user enjoys quiet dramas about friendship and love, with slow stories",
    "horror",
    "a family comedy with animated musicals for kids",
    "",
];

fn load<Bk: burn::tensor::backend::Backend>(dir: &Path) -> SentenceEncoder<Bk> {
    testing::write_tiny_model(dir, 21).expect("write tiny model");
    SentenceEncoder::load(dir, &EncoderOptions::default(), &Default::default()).expect("load tiny model")
}

fn flat<const D: usize>(t: Tensor<B, D>) -> Vec<f32> {
    t.into_data().into_vec().expect("f32")
}

#[test]
fn forward_from_after_hidden_states_until_equals_forward() {
    let dir = tempfile::tempdir().expect("tmp");
    let enc = load::<B>(dir.path());
    let layers = enc.model.num_layers();
    assert_eq!(layers, 2);
    let ids = enc.tokenize(&TEXTS).expect("tokenize");
    let seqs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
    let (ids, mask) = enc.pad(&seqs);
    let reference = flat(enc.model.forward(ids.clone(), mask.clone()));
    for k in [0, 1, layers, layers + 1] {
        let hidden = enc.model.hidden_states_until(ids.clone(), mask.clone(), k);
        assert_eq!(hidden.dims()[2], 32);
        let got = flat(enc.model.forward_from(hidden, mask.clone(), k));
        assert_abs_diff_eq!(got.as_slice(), reference.as_slice(), epsilon = 1e-5);
    }
    // Every layer is hidden_states.
    let all = flat(enc.model.hidden_states_until(ids.clone(), mask.clone(), layers));
    assert_abs_diff_eq!(all.as_slice(), flat(enc.model.hidden_states(ids, mask)).as_slice(), epsilon = 1e-6);
}

#[test]
fn cached_batches_give_the_encoder_vectors() {
    let dir = tempfile::tempdir().expect("tmp");
    let enc = load::<B>(dir.path());
    let expected = enc.encode_host(&TEXTS).expect("encode");
    let device = Default::default();
    for k in [0, 1, 2] {
        let cache = enc.cache_lower_layers(&TEXTS, k).expect("cache");
        assert_eq!((cache.len(), cache.frozen_layers(), cache.hidden_size()), (4, k, 32));
        let lens = enc.tokenize(&TEXTS).expect("tokenize").iter().map(Vec::len).collect::<Vec<_>>();
        assert_eq!(cache.token_counts(), lens.as_slice());
        assert_eq!(cache.bytes(), lens.iter().sum::<usize>() * 32 * 4);
        assert_eq!(cache.states(1).map(<[f32]>::len), Some(lens[1] * 32));
        // Rows in any order and any grouping: padding changes nothing.
        for rows in [vec![0, 1, 2, 3], vec![3, 1], vec![2]] {
            let (hidden, mask) = cache.batch::<B>(&rows, &device);
            let longest = rows.iter().map(|&r| lens[r]).max().expect("rows");
            assert_eq!(hidden.dims(), [rows.len(), longest, 32]);
            let got = flat(enc.model.forward_from(hidden, mask, cache.frozen_layers()));
            for (j, &r) in rows.iter().enumerate() {
                let want = expected.row(r);
                assert_abs_diff_eq!(
                    &got[j * 32..(j + 1) * 32],
                    want.as_slice().expect("contiguous row"),
                    epsilon = 1e-5
                );
            }
        }
    }
    let (hidden, mask) = enc.cache_lower_layers(&TEXTS, 1).expect("cache").batch::<B>(&[], &device);
    assert_eq!((hidden.dims(), mask.dims()), ([0, 1, 32], [0, 1]));
    assert!(enc.cache_lower_layers(&[], 1).expect("empty").is_empty());
    let err = enc.cache_lower_layers(&TEXTS, 3).expect_err("only 2 layers");
    assert!(matches!(err, TextError::InvalidOption(_)) && err.to_string().contains("3 frozen layers"), "{err}");
}

/// Counts parameters with and without a gradient (and checks gradients are not all zero).
struct GradCount<'a> {
    grads: &'a <AD as AutodiffBackend>::Gradients,
    with: usize,
    without: usize,
}

impl ModuleVisitor<AD> for GradCount<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<AD, D>>) {
        match param.val().grad(self.grads) {
            Some(g) => {
                let g: Vec<f32> = g.into_data().into_vec().expect("f32");
                assert!(g.iter().all(|x| x.is_finite()));
                assert!(g.iter().any(|&x| x != 0.0), "a zero gradient");
                self.with += 1;
            }
            None => self.without += 1,
        }
    }
}

fn count<M: Module<AD>>(m: &M, grads: &<AD as AutodiffBackend>::Gradients) -> (usize, usize) {
    let mut c = GradCount { grads, with: 0, without: 0 };
    m.visit(&mut c);
    (c.with, c.without)
}

#[test]
fn top_n_training_on_cached_states_reaches_only_the_top_layers() {
    let dir = tempfile::tempdir().expect("tmp");
    let enc = load::<AD>(dir.path());
    let n = 1;
    let frozen = enc.model.num_layers() - n;
    let cache = enc.cache_lower_layers(&TEXTS[..3], frozen).expect("cache");
    // Built with dropout off, although burn's dropout is active on an autodiff backend: the same
    // states as on the plain backend.
    let plain = SentenceEncoder::<B>::load(dir.path(), &EncoderOptions::default(), &Default::default()).expect("load");
    let reference = plain.cache_lower_layers(&TEXTS[..3], frozen).expect("cache");
    for row in 0..3 {
        let (a, b) = (cache.states(row).expect("row"), reference.states(row).expect("row"));
        assert_abs_diff_eq!(a, b, epsilon = 1e-6);
    }
    let model = enc.model.clone().fine_tuning(&FineTuning::TopLayers(n)).expect("top n");
    let (hidden, mask) = cache.batch::<AD>(&[0, 1, 2], &Default::default());
    assert!(!hidden.is_require_grad(), "the cached input needs no gradient");
    let out = model.forward_from(hidden.clone(), mask, cache.frozen_layers());
    let target = Tensor::<AD, 2>::ones([3, enc.dim()], &Default::default());
    let loss = (out - target).powf_scalar(2.0).mean();
    let grads = loss.backward();
    let (with, without) = count(&model.layers[1], &grads);
    assert_eq!((with, without), (11, 0), "every tensor of the top layer gets a gradient");
    assert_eq!(count(&model.layers[0], &grads).0, 0, "the frozen layer gets none");
    assert_eq!(count(&model.word_embeddings, &grads).0, 0);
    assert_eq!(count(&model.embeddings_norm, &grads).0, 0);
    assert!(hidden.grad(&grads).is_none());
}
