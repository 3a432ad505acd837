#!/usr/bin/env bash
# The whole lab pipeline on a generated sample corpus, from a fresh machine:
#   set-up -> LibriSpeech-format tarballs -> wav/txt + JSON manifests -> CSV -> train -> eval -> export -> run it.
# bash scripts/run_sample_pipeline.sh [WORK_DIR]      (default: ./sample)
set -euo pipefail
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
work=$(mkdir -p "${1:-sample}" && cd "${1:-sample}" && pwd)
steps=${SAMPLE_STEPS:-300}
epochs=$(((steps + 49) / 50))  # 200 training clips in batches of 4
[[ "${SKIP_SETUP:-0}" == 1 ]] || bash "$ROOT/scripts/setup.sh"
cd "$work"
echo "== 1. sample corpus (espeak-ng: two or three spoken digits per clip) and LibriSpeech preparation"
"$PYTHON" "$ROOT/tools/make_sample_corpus.py" --grammar digits --out-dir tars \
  --splits train-clean-100,dev-clean,dev-other,test-clean,test-other --train-utterances 200 --eval-utterances 10
"$PYTHON" "$ROOT/tools/librispeech.py" --target-dir data --tar-dir tars
echo "== 2. JSON -> CSV manifests"
for split in train val test_clean; do
  "$PYTHON" "$ROOT/tools/json_to_csv.py" --json "data/libri_${split}_manifest.json" \
    --csv "data/libri_${split}_manifest.csv" --verify
done
# A tiny configuration that learns the digits within minutes on 2 CPU cores: 8 kHz front end (81 bins), 128 x 2
# LSTM, batch 4 (50 steps per epoch), a constant LR of 1e-2, validation after every epoch.
echo "== 3. train a tiny configuration for $steps steps"
LOG_FILE=train.log bash "$ROOT/scripts/run_standalone_train_cpu.sh" --train_manifest data/libri_train_manifest.csv \
  --val_manifest data/libri_val_manifest.csv --epochs "$epochs" --batch_size 4 --save_dir run \
  --set DataConfig.SpectConfig.sample_rate=8000 --set ModelConfig.hidden_size=128 --set ModelConfig.hidden_layers=2 \
  --set OptimConfig.learning_rate=1e-2 --set OptimConfig.constant_epochs="$epochs" --set TrainingConfig.log_interval=10 \
  --set TrainingConfig.max_steps="$steps"
"$PYTHON" "$ROOT/tools/plot_curves.py" run --summary
ckpt=$(find run -maxdepth 1 -name 'DeepSpeech-*_*.ckpt' ! -name '*best*' -printf '%T@ %p\n' | sort -n | tail -1 | cut -d' ' -f2)
echo "== 4. evaluate $ckpt"
LOG_FILE=eval.log bash "$ROOT/scripts/run_eval_cpu.sh" run "$(basename "$ckpt")" \
  --test_manifest data/libri_test_clean_manifest.csv --batch_size 4 --save_output run/eval_results.csv
echo "== 5. export (MindIR and ONNX, each checked against the checkpoint)"
"$PYTHON" "$ROOT/export.py" --pre_trained_model_path "$ckpt" --file_format MINDIR --file_name export/deepspeech2
"$PYTHON" "$ROOT/export.py" --pre_trained_model_path "$ckpt" --file_format ONNX --file_name export/deepspeech2
echo "== done: $work (run/: checkpoints, train.log, curves.png; export/: deepspeech2.mindir, deepspeech2.onnx)"
