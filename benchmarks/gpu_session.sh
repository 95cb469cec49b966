#!/usr/bin/env bash
# Everything a session with a borrowed CUDA machine runs, as two calls of the device
# tool. A call carries the working tree plus one git-ignored folder, 64 MiB in all:
# the shipped checkpoints alone are ~30 MB, so `prepare` also moves all but the two
# default styles out of the tree until `restore` puts them back.
#
#   bash benchmarks/gpu_session.sh prepare   # here: fills gpu_carry/{checks,train}, slims the tree
#   bash benchmarks/gpu_session.sh checks    # there, carry gpu_carry/checks (<= CHECKS_BUDGET_S, 330 s)
#   bash benchmarks/gpu_session.sh train     # there, carry gpu_carry/train  (<= TRAIN_BUDGET_S, 360 s)
#   bash benchmarks/gpu_session.sh restore   # here, before any commit: the checkpoints come back
#
# checks: the test suite on the CUDA machine (CUDA-only tests included), benchmarks.gpu_bench
#         (model and end-to-end tables; PyAV from a carried wheel, so NVENC is
#         exercised), the flow smoother's cost per 1280x720 frame, `stylize-video run`
#         on a real clip (h264, then hevc + flow), and the model grid at more sizes and
#         precisions. Each step's time limit comes out of what is left of the budget.
# train:  the one-style GPU recipe (starry-night: full, then lite distilled from it),
#         timed alone; learn-style of an unseen painting (Matisse) on the shipped `full`
#         gallery for 20 s (issue 17's GPU goal); then, if time is left, the other seven
#         full styles side by side.
# Results land in $OUT, at most 8 files (logs and tarballs; results are re-packed
# after each step, so a call cut short still returns what it measured).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-session-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
SHARED=${SHARED:-../shared}
STASH=gpu_carry/stash
t0=$(date +%s)
elapsed() { echo $(($(date +%s) - t0)); }

prepare() {
    if [ -n "$(ls -A "$STASH" 2>/dev/null)" ]; then
        echo "checkpoints are still stashed in $STASH: run '$0 restore' first" >&2
        return 1
    fi
    rm -rf gpu_carry && mkdir -p gpu_carry/checks gpu_carry/train/styles "$STASH"
    # PyAV is not on the GPU image: carry its wheel (python 3.12 there; abi3 wheel).
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d gpu_carry/checks av==18.1.0 || return 1
    cp "$SHARED/videos/imageio_cockatoo.mp4" gpu_carry/checks/
    cp "$SHARED/data/photos256.tar" "$SHARED/weights/vgg16_imagenet_relu4_3.safetensors" \
        "$SHARED/styles/matisse_woman_with_a_hat_1905.jpg" gpu_carry/train/
    python3 - "$SHARED/styles" gpu_carry/train/styles <<'EOF' || return 1
import shutil, sys
from stylize_video.training.gallery import GALLERY
for s in GALLERY:
    shutil.copy(f"{sys.argv[1]}/{s.file}", sys.argv[2])
EOF
    # Slim the tree: the GPU runs need only the two default styles and the full gallery
    # (learn-style's base; with it, `-s starry-night` is its row, as shipped).
    for f in checkpoints/*.safetensors checkpoints/*.gif checkpoints/*.jpg; do
        case "$f" in checkpoints/starry-night* | checkpoints/gallery.safetensors) ;; *) [ -f "$f" ] && mv "$f" "$STASH/" ;; esac
    done
    echo "moved $(ls "$STASH" | wc -l) files from checkpoints/ to $STASH: run '$0 restore' after the device calls"
    # What each call would send: the tree (tracked + untracked-not-ignored files) plus its folder.
    python3 - <<'EOF'
import os, subprocess, sys
files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], capture_output=True, text=True).stdout.split()
tree = sum(os.path.getsize(f) for f in files if os.path.isfile(f))
limit, ok = 64 * 2**20, True
for part in ("checks", "train"):
    carry = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(f"gpu_carry/{part}") for f in fs)
    total = tree + carry
    print(f"{part}: tree {tree / 2**20:.1f} MiB + carry {carry / 2**20:.1f} MiB = {total / 2**20:.1f} MiB (limit 64)")
    ok &= total < limit - 2 * 2**20
sys.exit(0 if ok else 1)
EOF
}

restore() {
    [ -d "$STASH" ] && for f in "$STASH"/*; do [ -f "$f" ] && mv "$f" checkpoints/; done
    git status --short checkpoints
    echo "checkpoints restored ($(ls checkpoints/*.safetensors | wc -l) styles)"
}

checks() {
    local dir=gpu_carry/checks res=/tmp/gpu-results log="$OUT/checks.log" budget=${CHECKS_BUDGET_S:-330}
    rm -rf "$res" && mkdir -p "$res"
    pack() { tar cf "$OUT/results.tar" -C "$res" .; }
    # step NAME MAX_SECONDS COMMAND...: runs with the smaller of MAX_SECONDS and what is
    # left of the budget (less 10 s to pack), output in $res/NAME.log, its tail in the log.
    step() {
        local name=$1 want=$2 lim
        shift 2
        lim=$((budget - $(elapsed) - 10))
        [ "$lim" -gt "$want" ] && lim=$want
        if [ "$lim" -lt 15 ]; then
            echo "== $name: skipped, time budget spent ($(elapsed) s)" | tee -a "$log"
            return
        fi
        echo "== $name ($(elapsed) s, up to $lim s)" | tee -a "$log"
        timeout "$lim" "$@" >"$res/$name.log" 2>&1
        echo "   exit $?" >>"$res/$name.log"
        tail -n 25 "$res/$name.log" >>"$log"
        pack
    }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$dir"/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
    {
        date -u
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
        python3 -c "import torch, av, cv2; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'av', av.__version__, 'cv2', cv2.__version__, 'nvenc', [c for c in av.codecs_available if 'nvenc' in c])"
    } 2>&1 | tee "$log"
    step tests 90 python3 -m pytest -q -n 8 -p no:cacheprovider tests
    step gpu_bench $((${BENCH_S:-100} + 40)) python3 -m benchmarks.gpu_bench --budget-s "${BENCH_S:-100}" --out "$res"
    step temporal_gpu 60 python3 -m benchmarks.temporal --gpu-only --clips "$dir" --out "$res" --name temporal_gpu
    step run_h264 45 python3 -m stylize_video run -i "$dir/imageio_cockatoo.mp4" -s starry-night \
        -o /tmp/cockatoo-h264.mp4 --no-progress
    step run_hevc_flow 45 python3 -m stylize_video run -i "$dir/imageio_cockatoo.mp4" -s starry-night \
        --codec hevc --smooth flow -o /tmp/cockatoo-hevc-flow.mp4 --no-progress
    step probe 20 python3 -m benchmarks.gpu_session_probe /tmp/cockatoo-h264.mp4 /tmp/cockatoo-hevc-flow.mp4 \
        "$dir/imageio_cockatoo.mp4" --frames-to "$res"
    step model_small 60 python3 -m benchmarks.model_speed --device cuda --resolutions 640x480 1280x720 \
        --precisions fp16 --modes eager channels_last cuda_graph --out "$res" --name model_speed_gpu_small
    step model_precisions 60 python3 -m benchmarks.model_speed --device cuda --resolutions 1920x1080 \
        --precisions fp32 bf16 fp16 --modes eager channels_last cuda_graph --out "$res" \
        --name model_speed_gpu_precisions
    echo "== done ($(elapsed) s)" | tee -a "$log"
}

train() {
    local dir=gpu_carry/train out=/tmp/gallery budget=${TRAIN_BUDGET_S:-360} log="$OUT/train.log"
    local others=(${OTHER_STYLES:-great-wave the-scream composition-vii udnie water-lilies shipwreck edtaonisl})
    rm -rf "$out" && mkdir -p "$out" # a reused machine must not skip styles from an earlier call
    nvidia-smi --query-gpu=name,driver_version --format=csv 2>&1 | tee "$log"
    local common=(--styles-dir "$dir/styles" --data "$dir/photos256.tar"
        --vgg-weights "$dir/vgg16_imagenet_relu4_3.safetensors" --out "$out" --temporal-weight 30
        --sample-every 1000 --checkpoint-every 1000 --no-progress)
    echo "== recipe: starry-night full (<= ${RECIPE_S:-170} s of training), then its lite ($(elapsed) s)" | tee -a "$log"
    python3 -m stylize_video.training.gallery "${common[@]}" --only starry-night \
        --time-limit "${RECIPE_S:-170}" --lite-time-limit "${LITE_S:-60}" 2>&1 | tee -a "$log"
    echo "== recipe done ($(elapsed) s)" | tee -a "$log"
    (cd "$out" && tar cf "$OUT/ckpt-starry.tar" starry-night*.safetensors starry-night*_samples/*.png)
    # Issue 17's GPU goal: a new painting as a style vector on the gallery in 20 s. The same
    # command on the 2-core CPU (2026-12-03): 28-29 steps, val style 0.234-0.236 (goal: <= 0.251,
    # 1.2x the 700+100-iteration starry-night), 36 s wall with loading and validation.
    echo "== learn-style: Matisse on the gallery, 20 s ($(elapsed) s)" | tee -a "$log"
    timeout 120 python3 -m stylize_video learn-style "$dir/matisse_woman_with_a_hat_1905.jpg" \
        -o "$out/matisse-hat.safetensors" --data "$dir/photos256.tar" \
        --vgg-weights "$dir/vgg16_imagenet_relu4_3.safetensors" --time-limit 20s --no-progress 2>&1 |
        tail -n 3 | tee -a "$log"
    # What is left, less a margin for seven processes to start, validate and save.
    local left=$((budget - $(elapsed) - 45))
    if [ "$left" -lt 60 ]; then
        echo "== no time left for the other styles ($left s)" | tee -a "$log"
        return
    fi
    echo "== ${others[*]}: full, side by side, $left s of training each ($(elapsed) s)" | tee -a "$log"
    for s in "${others[@]}"; do
        python3 -m stylize_video.training.gallery "${common[@]}" --only "$s" --preset full --workers 2 \
            --time-limit "$left" >"$out/$s.log" 2>&1 &
    done
    wait
    for s in "${others[@]}"; do tail -n 2 "$out/$s.log"; done | tee -a "$log"
    echo "== done ($(elapsed) s)" | tee -a "$log"
    # Packed once all have finished (they finish together); at most 16 MiB a file.
    (
        cd "$out" || exit
        tar cf "$OUT/ckpt-b1.tar" $(for s in "${others[@]:0:4}"; do echo "$s.safetensors"; done)
        tar cf "$OUT/ckpt-b2.tar" $(for s in "${others[@]:4}"; do echo "$s.safetensors"; done)
        tar cf "$OUT/samples-b.tar" $(for s in "${others[@]}"; do echo "${s}_samples/final.png"; done)
    )
}

case "${1:-}" in
prepare | restore | checks | train) "$1" ;;
*)
    echo "usage: bash benchmarks/gpu_session.sh prepare|checks|train|restore" >&2
    exit 2
    ;;
esac
