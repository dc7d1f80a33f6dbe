#!/usr/bin/env bash
# Data-parallel `perpo train` on this machine's CPU (Gloo on 127.0.0.1): the same run (same config,
# same global batch) as 1 process and as 2 ranks, for the tiny model and a medium one; prints the
# time per step, the seconds each rank spent in collectives per step (metrics.jsonl's comm_s:
# all-reduce of the gradients and of the step's sums, ZeRO-1's broadcasts or reduce-scatter and
# all-gather; waiting for the slower rank included) and the share of the step that is, and rank 0's
# peak memory (metrics.jsonl's peak_memory_mb: the process's peak RSS on CPU, the allocator's peak
# on CUDA). The gradients' all-reduce overlaps the step's last backward: "hidden" is the seconds it
# ran during that backward (comm_hidden_s, not in comm_s) and its share of the gradients' whole
# all-reduce time (hidden + comm_grad_s, the time waited for it after the backward). "no overlap"
# (distributed.overlap=false) all-reduces every bucket after the backward, as before the overlap;
# "zero1" on Gloo all-reduces the gradients and broadcasts the owners' weights
# (distributed.reduce_scatter auto), "zero1 rs" reduce-scatters after the backward and all-gathers
# (reduce_scatter=true; nothing hidden). With --device cuda (bf16, NCCL; tools/gpu_check.sh runs it
# on machines with 2 or more GPUs): 1 process against --world ranks, one GPU each.
#   tools/bench_ddp.sh [--steps N] [--perpo build/perpo] [--device cpu|cuda] [--world N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
perpo="$root/build/perpo"
steps=20
device=cpu
world=2
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps="$2"; shift 2 ;;
    --perpo) perpo="$2"; shift 2 ;;
    --device) device="$2"; shift 2 ;;
    --world) world="$2"; shift 2 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench_ddp.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 - "$work/lists.jsonl" "$root/tests/fixtures/data/images/gradient_8x6.png" <<'EOF'
import json, sys
with open(sys.argv[1], "w") as f:
    for k in range(64):
        n = 8
        f.write(json.dumps({
            "id": f"list-{k}", "task": "grounding", "image": sys.argv[2],
            "prompt": f"Please provide the bounding box of object {k}",
            "ground_truth": f"[0.1{k % 10}, 0.2, 0.5, 0.6]",
            "answers": [f"[0.{i + 1}{k % 10}, 0.{9 - i}, 0.5, 0.6]" for i in range(n)],
            "rewards": [1 - i / (n - 1) for i in range(n)],
            "ref_logps": [-20 - 0.5 * i for i in range(n)]}) + "\n")
EOF
common=(model.path= model.freeze_vision=false "tokenizer.path=$root/tests/fixtures/tokenizer/tiny.model"
        tokenizer.chat_template=plain "data.train=$work/lists.jsonl" data.shuffle=false
        optim.schedule=constant train.lists_per_step=8 "train.max_steps=$steps" train.log_every=1
        train.checkpoint_every=0 run.seed=7)
tiny=(model.tiny.vision_hidden=16 model.tiny.vision_layers=1 model.tiny.vision_heads=2
      model.tiny.image_size=16 model.tiny.patch_size=8 model.tiny.hidden=32 model.tiny.layers=2
      model.tiny.heads=4 model.tiny.kv_heads=2 model.tiny.intermediate=64 image.size=16)
medium=(model.tiny.vision_hidden=128 model.tiny.vision_layers=2 model.tiny.vision_heads=4
        model.tiny.image_size=64 model.tiny.patch_size=8 model.tiny.hidden=512 model.tiny.layers=4
        model.tiny.heads=8 model.tiny.kv_heads=8 model.tiny.intermediate=1376 image.size=64)

# Mean seconds per step and comm_s per step over the steps after the first two.
summary() {
  python3 - "$1" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][2:]
step = sum(l["lists"] / l["lists_per_s"] for l in lines) / len(lines)
comm = [l["comm_s"] for l in lines if "comm_s" in l]
peak = max(l["peak_memory_mb"] for l in lines)
text = f"{step * 1000:8.1f} ms/step   peak {peak:7.1f} MB"
if comm:
    c = sum(comm) / len(comm)
    text += f"   comm {c * 1000:7.1f} ms/step ({100 * c / step:4.1f}%)"
hidden = [l["comm_hidden_s"] for l in lines if "comm_hidden_s" in l]
waited = [l["comm_grad_s"] for l in lines if "comm_grad_s" in l]
if hidden and waited:
    h, w = sum(hidden) / len(hidden), sum(waited) / len(waited)
    share = 100 * h / (h + w) if h + w > 0 else 0.0
    text += f"   grads: hidden {h * 1000:6.1f} ms, waited {w * 1000:6.1f} ms ({share:4.1f}% hidden)"
print(text)
EOF
}

run_job() {  # name world threads shape-args...
  local name="$1" world="$2" threads="$3"
  shift 3
  local dir="$work/$name"
  if [ "$world" = 1 ]; then
    "$perpo" --log-level warn train "${common[@]}" "$@" "run.threads=$threads" "run.dir=$dir" >/dev/null
  else
    local port=$((20000 + RANDOM % 20000)) pids=()
    for ((r = 0; r < world; r++)); do
      RANK=$r WORLD_SIZE=$world LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
        "$perpo" --log-level warn train "${common[@]}" "$@" "run.threads=$threads" \
        "run.dir=$dir" >/dev/null &
      pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p"; done
  fi
  printf '%-28s %s\n' "$name" "$(summary "$dir/metrics.jsonl")"
}

if [ "$device" = cuda ]; then
  echo "perpo train on CUDA (bf16, NCCL), 8 lists of 8 answers per step, $steps steps"
  common+=(run.device=cuda run.dtype=bf16)
  for shape in tiny medium; do
    declare -n args="$shape"
    run_job "$shape 1 process" 1 1 "${args[@]}"
    run_job "$shape $world ranks" "$world" 1 "${args[@]}"
    run_job "$shape $world ranks zero1" "$world" 1 "${args[@]}" distributed.zero=1
    run_job "$shape $world ranks zero1 bcast" "$world" 1 "${args[@]}" distributed.zero=1 \
      distributed.reduce_scatter=false
  done
  exit 0
fi
echo "perpo train, 8 lists of 8 answers per step, $steps steps; $(nproc) cores"
for shape in tiny medium; do
  declare -n args="$shape"
  run_job "$shape 1 process 1 thread" 1 1 "${args[@]}"
  run_job "$shape 1 process 2 threads" 1 2 "${args[@]}"
  run_job "$shape $world ranks no overlap" "$world" 1 "${args[@]}" distributed.overlap=false
  run_job "$shape $world ranks 1 thread" "$world" 1 "${args[@]}"
  run_job "$shape $world ranks zero1" "$world" 1 "${args[@]}" distributed.zero=1
  run_job "$shape $world ranks zero1 rs" "$world" 1 "${args[@]}" distributed.zero=1 \
    distributed.reduce_scatter=true
done
