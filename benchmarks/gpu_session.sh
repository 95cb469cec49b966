#!/usr/bin/env bash
# Everything a session with a CUDA machine runs, in two calls of the device tool
# (what each call needs is carried from a git-ignored folder; the two folders do not
# fit one 64 MiB carry together).
#
#   bash benchmarks/gpu_session.sh prepare      # here: fills gpu_carry/checks and gpu_carry/train
#   bash benchmarks/gpu_session.sh checks       # there, carry gpu_carry/checks  (~4 min)
#   bash benchmarks/gpu_session.sh train        # there, carry gpu_carry/train   (~6 min)
#
# checks: the test suite on the CUDA machine (CUDA-only tests included), the model and
#         end-to-end tables (PyAV from a carried wheel, so NVENC is exercised), the
#         flow smoother's cost per 1280x720 frame, and `stylize-video run` on a real clip.
# train:  the one-style GPU recipe (starry-night: full, then lite distilled from it),
#         timed alone; then, if time is left, the other seven full styles side by side.
# Results land in $OUT (at most 8 files come back: logs and tarballs).
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu-session-out}
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
SHARED=${SHARED:-../shared}
t0=$(date +%s)
elapsed() { echo $(($(date +%s) - t0)); }

prepare() {
    rm -rf gpu_carry && mkdir -p gpu_carry/checks gpu_carry/train/styles
    # PyAV is not on the GPU image: carry its wheel (python 3.12 there; abi3 wheel).
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 -d gpu_carry/checks av==18.1.0
    cp "$SHARED/videos/imageio_cockatoo.mp4" gpu_carry/checks/
    cp "$SHARED/data/photos256.tar" "$SHARED/weights/vgg16_imagenet_relu4_3.safetensors" gpu_carry/train/
    python3 - "$SHARED/styles" gpu_carry/train/styles <<'EOF'
import shutil, sys
from stylize_video.training.gallery import GALLERY
for s in GALLERY:
    shutil.copy(f"{sys.argv[1]}/{s.file}", sys.argv[2])
EOF
    du -sh gpu_carry/*
}

checks() {
    local dir=gpu_carry/checks res=/tmp/gpu-results log="$OUT/checks.log"
    mkdir -p "$res"
    # Results are re-packed into one tarball after each step, so a run cut short by its
    # time limit still returns what it measured (and stays under the 8-file limit).
    pack() { tar cf "$OUT/results.tar" -C "$res" .; }
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        "$dir"/*.whl && export PYTHONPATH=$PYTHONPATH:/tmp/site
    {
        date -u
        nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
        python3 -c "import torch, av, cv2; print('torch', torch.__version__, 'cuda', torch.version.cuda, \
'av', av.__version__, 'cv2', cv2.__version__, 'nvenc', [c for c in av.codecs_available if 'nvenc' in c])"
    } 2>&1 | tee "$log"
    echo "== tests ($(elapsed) s)" | tee -a "$log"
    timeout "${TESTS_S:-100}" python3 -m pytest -q -n 8 -p no:cacheprovider tests 2>&1 | tail -25 | tee -a "$log"
    echo "== the CLI on a real clip: h264 default, then hevc + flow smoothing ($(elapsed) s)" | tee -a "$log"
    timeout 60 python3 -m stylize_video run -i "$dir/imageio_cockatoo.mp4" -s starry-night \
        -o /tmp/cockatoo-h264.mp4 --no-progress 2>&1 | tail -8 | tee -a "$log"
    timeout 60 python3 -m stylize_video run -i "$dir/imageio_cockatoo.mp4" -s starry-night --codec hevc \
        --smooth flow -o /tmp/cockatoo-hevc-flow.mp4 --no-progress 2>&1 | tail -8 | tee -a "$log"
    python3 benchmarks/gpu_session_probe.py /tmp/cockatoo-h264.mp4 /tmp/cockatoo-hevc-flow.mp4 \
        "$dir/imageio_cockatoo.mp4" --frames-to "$res" 2>&1 | tee -a "$log"
    pack
    echo "== flow smoother on CUDA ($(elapsed) s)" | tee -a "$log"
    timeout 90 python3 benchmarks/temporal.py --gpu-only --clips "$dir" --out "$res" --name temporal_gpu \
        2>&1 | tail -20 | tee -a "$log"
    pack
    echo "== model grid: fp16 at 640x480 / 1280x720, every precision at 1920x1080 ($(elapsed) s)" | tee -a "$log"
    timeout 100 python3 benchmarks/model_speed.py --device cuda --resolutions 640x480 1280x720 \
        --precisions fp16 --modes eager channels_last cuda_graph --out "$res" --name model_speed_gpu_small \
        2>&1 | tail -3 | tee -a "$log"
    pack
    timeout 100 python3 benchmarks/model_speed.py --device cuda --resolutions 1920x1080 \
        --precisions fp32 bf16 fp16 --modes eager channels_last cuda_graph --out "$res" \
        --name model_speed_gpu_precisions 2>&1 | tail -3 | tee -a "$log"
    pack
    echo "== gpu_bench: fp16 model (+compiled) and end to end at 1080p / 4K ($(elapsed) s)" | tee -a "$log"
    timeout $((${BENCH_S:-120} + 60)) python3 benchmarks/gpu_bench.py --budget-s "${BENCH_S:-120}" --out "$res" \
        >"$res/gpu_bench.log" 2>&1
    tail -40 "$res/gpu_bench.log" >>"$log"
    pack
    echo "== done ($(elapsed) s)" | tee -a "$log"
}

train() {
    local dir=gpu_carry/train out=/tmp/gallery budget=${TRAIN_BUDGET_S:-420} log="$OUT/train.log"
    local others=(${OTHER_STYLES:-great-wave the-scream composition-vii udnie water-lilies shipwreck edtaonisl})
    mkdir -p "$out"
    nvidia-smi --query-gpu=name,driver_version --format=csv 2>&1 | tee "$log"
    local common=(--styles-dir "$dir/styles" --data "$dir/photos256.tar"
        --vgg-weights "$dir/vgg16_imagenet_relu4_3.safetensors" --out "$out" --temporal-weight 30
        --sample-every 1000 --checkpoint-every 1000 --no-progress)
    echo "== recipe: starry-night full (<= ${RECIPE_S:-170} s of training), then its lite ($(elapsed) s)" | tee -a "$log"
    python3 -m stylize_video.training.gallery "${common[@]}" --only starry-night \
        --time-limit "${RECIPE_S:-170}" --lite-time-limit "${LITE_S:-60}" 2>&1 | tee -a "$log"
    echo "== recipe done ($(elapsed) s)" | tee -a "$log"
    # Each tarball is written as soon as its networks exist: a run cut short keeps them.
    (cd "$out" && tar cf "$OUT/ckpt-starry.tar" starry-night*.safetensors starry-night*_samples/*.png)
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
    (
        cd "$out" || exit
        tar cf "$OUT/ckpt-b1.tar" $(for s in "${others[@]:0:4}"; do echo "$s.safetensors"; done)
        tar cf "$OUT/ckpt-b2.tar" $(for s in "${others[@]:4}"; do echo "$s.safetensors"; done)
        tar cf "$OUT/samples-b.tar" $(for s in "${others[@]}"; do echo "${s}_samples/final.png"; done)
    )
}

case "${1:-}" in
prepare | checks | train) "$1" ;;
*)
    echo "usage: bash benchmarks/gpu_session.sh prepare|checks|train" >&2
    exit 2
    ;;
esac
