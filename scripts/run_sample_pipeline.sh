#!/usr/bin/env bash
# The whole lab pipeline on a generated sample corpus, from a fresh machine:
#   set-up -> LibriSpeech-format tarballs -> wav/txt + JSON manifests -> CSV -> train -> eval -> export -> run it.
# bash scripts/run_sample_pipeline.sh [WORK_DIR]      (default: ./sample)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
work=$(mkdir -p "${1:-sample}" && cd "${1:-sample}" && pwd)
steps=${SAMPLE_STEPS:-10}
[[ "${SKIP_SETUP:-0}" == 1 ]] || bash "$ROOT/scripts/setup.sh"
cd "$work"
echo "== 1. sample corpus (espeak-ng) and LibriSpeech preparation"
"$PYTHON" "$ROOT/tools/make_sample_corpus.py" --out-dir tars \
  --splits train-clean-100,dev-clean,dev-other,test-clean,test-other --train-utterances 40 --eval-utterances 8
"$PYTHON" "$ROOT/tools/librispeech.py" --target-dir data --tar-dir tars
echo "== 2. JSON -> CSV manifests"
for split in train val test_clean; do
  "$PYTHON" "$ROOT/tools/json_to_csv.py" --json "data/libri_${split}_manifest.json" \
    --csv "data/libri_${split}_manifest.csv" --verify
done
echo "== 3. train a tiny configuration for $steps steps"
LOG_FILE=train.log bash "$ROOT/scripts/run_standalone_train_cpu.sh" --train_manifest data/libri_train_manifest.csv \
  --val_manifest data/libri_val_manifest.csv --epochs 1 --batch_size 4 --save_dir run \
  --set ModelConfig.hidden_size=64 --set ModelConfig.hidden_layers=2 --set TrainingConfig.max_steps="$steps"
ckpt=$(find run -maxdepth 1 -name 'DeepSpeech-*_*.ckpt' ! -name '*best*' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
echo "== 4. evaluate $ckpt"
LOG_FILE=eval.log bash "$ROOT/scripts/run_eval_cpu.sh" run "$(basename "$ckpt")" \
  --test_manifest data/libri_test_clean_manifest.csv --batch_size 4 --save_output run/eval_results.csv
echo "== 5. export (MindIR and ONNX, each checked against the checkpoint)"
"$PYTHON" "$ROOT/export.py" --pre_trained_model_path "$ckpt" --file_format MINDIR --file_name export/deepspeech2
"$PYTHON" "$ROOT/export.py" --pre_trained_model_path "$ckpt" --file_format ONNX --file_name export/deepspeech2
echo "== done: $work (run/: checkpoints, train.log, curves.png; export/: deepspeech2.mindir, deepspeech2.onnx)"
