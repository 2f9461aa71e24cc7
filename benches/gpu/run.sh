#!/bin/bash
# Issue 18's GPU run, as it ran on a lent NVIDIA H200 on 2026-12-04 (docs/benchmarks.md, "GPU"):
# the CUDA test suites, the training benchmarks with their PyTorch peers, the encoder with
# sentence-transformers, a training run and an encoder parity check, each under a deadline.
#
# It runs from the repository root of a machine with a GPU but no Rust toolchain, with $OUT set
# to a folder for its logs and BUILD_ROOT to the repository root the binaries were built in
# (DEADLINE, in seconds, bounds the whole run; default 500). It expects a folder .devcarry/
# (git-ignored; name it in the device tool's `carry`) that travels with it:
#   bin.tar.xz     bins/{tears,models,recommend,tuning,serve,vae,tears_bench}, stripped, built here:
#                    cargo build --release -p tears-cli --features cuda
#                    cargo test --release -p tears-model --features test-cuda --no-run
#                    cargo test --release -p tears-serve --features test-cuda --no-run
#                    cargo bench --features cuda --no-run --bench vae --bench tears
#                  (built into CARGO_TARGET_DIR=target-cuda, also ignored, to keep ./target's CPU
#                  build; tar them in one archive with xz --lzma2=preset=6,dict=384MiB: the shared code
#                  compresses across binaries, 363 MB to 33 MB)
#   data/          ml-1m/ and summaries/ from ../shared/data
#   minilm/        all-MiniLM-L6-v2's folder without model.safetensors (devcheck.py writes seeded
#                  random weights of the same shapes: the checkpoint is too large to travel)
#   gpu.sh         a copy of this script (run as `bash .devcarry/gpu.sh`)
#   devcheck.py    a copy of benches/gpu/devcheck.py
#
# What it taught (2026-12-04): a fresh process spends 8-36 s per matrix-product shape in burn's
# CUDA autotune, so the suites and the benches did not finish inside this script's deadline.
# Next time, warm up first (one short `tears train multvae --epochs 1 --backend cuda` fills
# target/autotune, which survives between the calls of one lease), then run this.
set -u
R=$PWD; C=$R/.devcarry; B=$C/bins; LOG=$OUT/gpu.log; S=/tmp/split
exec > >(tee -a "$LOG") 2>&1
t0=$(date +%s); DEADLINE=${DEADLINE:-500}
el() { echo $(( $(date +%s) - t0 )); }
stamp() { echo; echo "=== [$(el) s] $*"; }
left() { [ $(( DEADLINE - $(el) )) -gt "$1" ] || { echo "SKIPPED (deadline): $2"; return 1; }; }
stamp machine
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader
lscpu | grep -E "^Model name|^CPU\(s\)"; nproc
# The test binaries keep the build machine's paths (CARGO_MANIFEST_DIR): BUILD_ROOT names the
# repository root they were built in, linked here to this checkout.
if [ -n "${BUILD_ROOT:-}" ] && [ ! -e "$BUILD_ROOT" ]; then mkdir -p "${BUILD_ROOT%/*}" && ln -s "$R" "$BUILD_ROOT"; fi
NVRTC=$(find /usr/local/cuda/ /usr/local/cuda*/ /opt -name 'libnvrtc.so*' 2>/dev/null | head -1); echo "nvrtc: $NVRTC"
export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/cuda/lib64:${NVRTC%/*}:${LD_LIBRARY_PATH:-}
python3 -c "import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$C/bin.tar.xz" "$C" && ls -la "$B"
export TEARS_DATA_DIR=$C/data NO_COLOR=1 CARGO_TARGET_DIR=/tmp/target
stamp backends; "$B/tears" backends
stamp setup
python3 "$C/devcheck.py" weights "$C/minilm"
SUMXZ=$C/data/summaries/ml-1m/user_summary_gpt4_all6016users_2023-12-12.json.xz
python3 "$C/devcheck.py" subset "$SUMXZ" /tmp/sum1000.json 1000
"$B/tears" prepare --dataset ml1m-gpt4 --data-dir "$C/data" --out $S 2>&1 | tail -2

stamp "test suites, cuda test backend (4 binaries at once)"
runt() { (cd "$R/crates/$1" && CARGO_MANIFEST_DIR=$R/crates/$1 timeout 170 "$B/$2" --test-threads=8 > /tmp/t_$2.log 2>&1; echo "exit $?" >> /tmp/t_$2.log); }
P=(); for t in "tears-model models" "tears-model recommend" "tears-model tuning" "tears-serve serve"; do runt $t & P+=($!); done
wait "${P[@]}"   # not a bare wait: that would also wait for the tee above
for t in models recommend tuning serve; do echo "--- $t"; grep -E "^test result|FAILED|panicked|^exit|skipping" /tmp/t_$t.log | head -20; done
stamp "after tests"

if left 80 "bench vae"; then stamp "bench: vae epochs"; TEARS_BENCH_MODELS=multvae,recvae timeout 120 "$B/vae" --bench --noplot cuda 2>&1 | grep -vE "^\s*$|Benchmarking .*: (Warming|Collecting|Analyzing)"; fi
if left 60 "bench tears"; then stamp "bench: tears epoch"; timeout 60 "$B/tears_bench" --bench --noplot cuda 2>&1 | grep -vE "^\s*$|Benchmarking .*: (Warming|Collecting|Analyzing)"; fi
if left 60 "peer vae"; then stamp "peer: vae_torch cuda"; timeout 90 python3 benches/peers/vae_torch.py --bench --split $S --models multvae,recvae --device cuda --threads 16; fi
if left 40 "peer tears"; then stamp "peer: tears_torch cuda"; timeout 60 python3 benches/peers/tears_torch.py --split $S --device cuda --threads 16; fi
if left 40 "peer st"; then stamp "peer: sentence-transformers cuda, 1000 and all"
  timeout 60 python3 benches/peers/text_st.py --summaries "$SUMXZ" --model "$C/minilm" --limit 1000 --device cuda --threads 16 --save /tmp/st.npy
  timeout 60 python3 benches/peers/text_st.py --summaries "$SUMXZ" --model "$C/minilm" --limit 0 --reps 2 --device cuda --threads 16; fi
if left 40 "embed"; then stamp "tears embed: cuda twice, flex once, parity"
  for i in 1 2; do timeout 60 "$B/tears" embed --backend cuda --model-dir "$C/minilm" --summaries /tmp/sum1000.json --out /tmp/cuda.npy --no-progress | tail -1; done
  timeout 60 "$B/tears" embed --backend flex --model-dir "$C/minilm" --summaries /tmp/sum1000.json --out /tmp/flex.npy --no-progress | tail -1
  python3 "$C/devcheck.py" compare /tmp/cuda.npy /tmp/st.npy "tears-cuda vs sentence-transformers-cuda"
  python3 "$C/devcheck.py" compare /tmp/cuda.npy /tmp/flex.npy "tears-cuda vs tears-flex"
  timeout 60 "$B/tears" embed --backend cuda --model-dir "$C/minilm" --summaries "$SUMXZ" --out /tmp/all.npy --no-progress | tail -1; fi
if left 40 "train"; then stamp "tears train recvae / multvae on cuda"
  timeout 90 "$B/tears" train recvae --split $S --out /tmp/recvae --epochs 4 --patience 0 --backend cuda --no-progress 2>&1 | tail -12
  timeout 90 "$B/tears" train multvae --split $S --out /tmp/multvae --epochs 20 --patience 0 --backend cuda --no-progress 2>&1 | tail -26; fi
if left 40 "workers"; then P=(); stamp "tears train multvae --workers 2 on the one GPU (3 epochs)"
  for r in 1 0; do timeout 90 "$B/tears" train multvae --split $S --out /tmp/multvae2 --epochs 3 --patience 0 --backend cuda --no-progress --workers 2 --rank $r --coordinator 127.0.0.1:29511 > /tmp/w$r.log 2>&1 & P+=($!); done; wait "${P[@]}"
  tail -6 /tmp/w0.log; tail -2 /tmp/w1.log; fi
stamp done
for t in models recommend tuning serve; do cp /tmp/t_$t.log "$OUT/test_$t.log"; done
