#!/usr/bin/env bash
# The shared stage script of every inmsrl recipe (egs/<corpus>/run.sh calls it with the corpus's own
# options). Stages follow docs/design.md §5; run a range with --stage/--stop-stage, resume by re-running
# from the stage that failed. Corpus-specific work lives in the recipe's local/ scripts.
set -euo pipefail
# The whole script is one block, read before it runs: editing it while a recipe runs cannot change
# what the running recipe does.
{

log() {
  local fname=${BASH_SOURCE[1]##*/}
  echo -e "$(date '+%Y-%m-%dT%H:%M:%S') (${fname}:${BASH_LINENO[0]}:${FUNCNAME[1]}) $*"
}
min() { if [ "$1" -lt "$2" ]; then echo "$1"; else echo "$2"; fi; }
SECONDS=0

# General options.
stage=0              # first stage to run
stop_stage=9         # last stage to run
nj=4                 # parallel jobs for CPU work (data preparation, dumping, embedding)
ngpu=0               # GPUs per training job (0: CPU)
seed=0               # random seed of every stage
exp_dir=exp          # experiments: models, logs, scores
data_dir=data        # Kaldi-style data directories (docs/design.md §3)
dump_dir=dump        # memory-mapped audio and segment tables
conf_dir=conf        # YAML configurations of the training stages

# Stage options (each is passed on to the stage's own tool).
corpus_opts=         # stage 0: options of local/corpus.sh
data_opts=           # stage 1: options of local/data.sh
segment_seconds="3 5 10"  # stage 2: segment tables (training, PAFT/ABX, validation/MES)
sample_rate=44100    # stage 2: the dump's sample rate (the models' stft.sample_rate must match it)
abx_opts=            # stage 2: options of local/abx.sh (the ABX set, where the recipe has one)
train_set=train
valid_set=validation
test_set=test
target_sources=      # stages 3 and 8: instruments with separators (and the baselines' and Table 5's mean);
                     # empty: every source of ${data_dir}/${train_set}/sources
triplet_models="clean cascade"            # stage 4: conf/<name>.yaml for each (clean*, cascade*)
direct_models="direct_reconst direct direct_da"  # stage 6: conf/<name>.yaml each, from the pre-trained Direct;
                     # longest first: the job array starts them in this order, nj at a time
direct_teacher=clean_all  # stage 6: the Clean over every source whose embeddings Direct is pre-trained to;
                          # trained in stage 6 from conf/<name>.yaml unless stage 4 trains it
paft_models="clean cascade cascade_ft cascade_paft"  # stage 7: conf/paft_<model>.yaml each
paft_seeds="1 2 3"   # stage 7: one PAFT run per seed (Table 5 reports mean ± std)
train_opts=          # stages 3-7: key=value overrides added to every training (e.g. trainer.max_epochs=1)
score_models=        # stage 8: experiments to score [every finished one whose config's experiment: says scored]
score_opts=          # stage 8: options of inmsrl embed, e.g. "--vis-per-pair 3 --pseudo-targets 5"
sdr_opts=            # stage 8: options of inmsrl sdr, e.g. "--tracks 8 --seconds 30" (museval is slow)
search_model=cascade_ft   # stage 9: the model whose index of the test songs ends the run
search_weights=      # stage 9: instrument weights of the example search; empty: <first target source>=1

help_message=$(cat <<HELP
Usage: $0 [options]
Runs the inmsrl recipe stages [--stage, --stop-stage] in the current recipe directory.

Stages:
  0  corpus        get or generate the corpus (local/corpus.sh)
  1  data prep     data directories data/{train,validation,test} (local/data.sh), validated
  2  dump          memory-mapped audio, segment tables, ABX preparation
  3  MSS           per-instrument separation U-Nets
  4  triplet       Clean and Cascade feature extractors
  5  E2E-FT        Cascade-FT
  6  Direct        Direct, Direct w/ DA, Direct-Reconst
  7  PAFT          perception-aware fine-tuning
  8  scoring       MES, SDR, ABX agreement, figures, RESULTS.md
  9  search        index the test songs with --search-model, run one example search

Options (default in brackets):
  --stage N          first stage [$stage]
  --stop-stage N     last stage [$stop_stage]
  --nj N             parallel CPU jobs [$nj]
  --ngpu N           GPUs per training job [$ngpu]
  --seed N           random seed [$seed]
  --exp-dir DIR      [$exp_dir]   --data-dir DIR [$data_dir]   --dump-dir DIR [$dump_dir]
  --conf-dir DIR     YAML configs [$conf_dir]
  --corpus-opts STR  options of local/corpus.sh [$corpus_opts]
  --data-opts STR    options of local/data.sh [$data_opts]
  --segment-seconds "S..."  segment tables of stage 2 [$segment_seconds]
  --sample-rate N    sample rate of the dump of stage 2 [$sample_rate]
  --abx-opts STR     options of local/abx.sh [$abx_opts]
  --target-sources "S..."  instruments with a separator (stage 3) and scored by stage 8
                           [${target_sources:-every source of <data-dir>/<train-set>/sources}]
  --triplet-models "M..."  stage 4 models, one conf/<M>.yaml each [$triplet_models]
  --direct-models "M..."   stage 6 variants, one conf/<M>.yaml each [$direct_models]
  --direct-teacher M       stage 6: Clean experiment of the pre-training targets [$direct_teacher]
  --paft-models "M..."     stage 7: PAFT of these models, conf/paft_<M>.yaml each [$paft_models]
  --paft-seeds "S..."      stage 7: one PAFT run per seed [$paft_seeds]
  --train-opts "K=V..."    overrides for every training, e.g. "trainer.max_epochs=1" [$train_opts]
  --score-models "M..."    experiments scored in stage 8 [every finished one whose config says scored]
  --score-opts STR         options of inmsrl embed in stage 8 [$score_opts]
  --sdr-opts STR           options of inmsrl sdr in stage 8 [$sdr_opts]
  --search-model NAME      stage 9: experiment to pack and index the test songs with [$search_model]
  --search-weights W       stage 9: weights of the example search [${search_weights:-<first target source>=1}]
  --train-set / --valid-set / --test-set NAME   [$train_set / $valid_set / $test_set]
  --config FILE      shell file of option assignments, read where it appears
  --help             this message
The job backend (run.pl, queue.pl, slurm.pl) is chosen in cmd.sh by cmd_backend.
HELP
)

original_args=("$@")
. utils/parse_options.sh
if [ $# -ne 0 ]; then
  echo "$0: unexpected argument(s): $*  (options start with --; see --help)" >&2
  exit 1
fi
last_stage=9
require_integer() {  # require_integer OPTION VALUE MIN [MAX]: exit 1 naming the option unless it fits
  local option=$1 value=$2 low=$3 high=${4:-}
  if ! [[ ${value} =~ ^[0-9]+$ ]] || [ "${value}" -lt "${low}" ] || { [ -n "${high}" ] && [ "${value}" -gt "${high}" ]; }; then
    echo "$0: ${option} must be an integer from ${low}${high:+ to ${high}}, not '${value}'" >&2
    exit 1
  fi
}
require_integer --stage "${stage}" 0 "${last_stage}"
require_integer --stop-stage "${stop_stage}" 0 "${last_stage}"
if [ "${stage}" -gt "${stop_stage}" ]; then
  echo "$0: --stage ${stage} comes after --stop-stage ${stop_stage}: no stage would run" >&2
  exit 1
fi
require_integer --nj "${nj}" 1
require_integer --ngpu "${ngpu}" 0
require_integer --seed "${seed}" 0

. ./path.sh
. ./cmd.sh

# Keep the exact command line of this run, quoted for the shell, so it can be re-run as it was.
mkdir -p "${exp_dir}"
{
  printf '# %s\n' "$(date '+%Y-%m-%dT%H:%M:%S')"
  printf 'cd %q && %q' "$PWD" "$0"; printf ' %q' "${original_args[@]}"; echo
} >> "${exp_dir}/command_history.sh"

stages_run=()
stages_skipped=()
# run_stage N NAME FUNCTION [WHY-SKIP]: runs FUNCTION when N is inside [stage, stop_stage], unless the
# function WHY-SKIP prints a reason not to (then the stage is logged as skipped, with the reason).
run_stage() {
  local number=$1 name=$2 fn=$3 why_skip=${4:-} start=$SECONDS reason=
  [ "${stage}" -le "${number}" ] && [ "${stop_stage}" -ge "${number}" ] || return 0
  [ -z "${why_skip}" ] || reason=$("${why_skip}")
  if [ -n "${reason}" ]; then
    log "Stage ${number}: ${name} skipped: ${reason}"
    stages_skipped+=("${number} (${reason})")
    return 0
  fi
  log "Stage ${number}: ${name}"
  "${fn}"
  log "Stage ${number}: ${name} done in $((SECONDS - start)) s"
  stages_run+=("${number}")
}

stage_corpus() {
  [ -x local/corpus.sh ] || { log "ERROR: local/corpus.sh is missing or not executable"; exit 1; }
  # shellcheck disable=SC2086
  local/corpus.sh ${corpus_opts}
}

stage_data() {
  [ -x local/data.sh ] || { log "ERROR: local/data.sh is missing or not executable"; exit 1; }
  # shellcheck disable=SC2086
  local/data.sh --data-dir "${data_dir}" ${data_opts}
  local dset
  for dset in "${train_set}" "${valid_set}" "${test_set}"; do
    inmsrl validate-data-dir "${data_dir}/${dset}"
  done
}

stage_dump() {
  local dset
  for dset in "${train_set}" "${valid_set}" "${test_set}"; do
    log "  dumping ${data_dir}/${dset} -> ${dump_dir}/${dset} (log: ${dump_dir}/${dset}/log/dump.log)"
    ${train_cmd} "${dump_dir}/${dset}/log/dump.log" \
      inmsrl dump --data-dir "${data_dir}/${dset}" --out "${dump_dir}/${dset}" \
        --segments ${segment_seconds} --sample-rate "${sample_rate}" --jobs "${nj}"
    tail -n +2 "${dump_dir}/${dset}/log/dump.log" | grep -E '^ |: [0-9]+ tracks|dumping again' || true
  done
  if [ -x local/abx.sh ]; then
    log "  ABX set for PAFT and perceptual scoring -> ${dump_dir}/abx"
    # shellcheck disable=SC2086
    local/abx.sh --out "${dump_dir}/abx" ${abx_opts}
  else
    log "  no local/abx.sh: this corpus has no ABX set, so PAFT (stage 7) and the perceptual agreement" \
      "of stage 8 will be skipped"
  fi
}

abx_set_missing() {  # prints why the ABX stages cannot run (nothing when they can)
  if [ ! -f "${dump_dir}/abx/inst_sim_abx_answers.csv" ] && [ ! -x local/abx.sh ]; then
    echo "this corpus has no ABX set (no local/abx.sh), which PAFT learns from"
  fi
}

paft_skipped() {  # why stage 7 has nothing to do (nothing when it has)
  if [ -z "${paft_models// /}" ]; then
    echo "--paft-models is empty"
  else
    abx_set_missing
  fi
}

train() {  # train NAME CONFIG [key=value ...]: one training under ${cuda_cmd} into exp/NAME/
  local name=$1 config=$2
  shift 2
  [ -f "${config}" ] || { log "ERROR: ${config} does not exist"; exit 1; }
  log "  training ${name} (${config}); log: ${exp_dir}/${name}/log/train.log"
  ${cuda_cmd} --gpu "${ngpu}" "${exp_dir}/${name}/log/train.log" \
    inmsrl train --config "${config}" --exp-dir "${exp_dir}/${name}" --ngpu "${ngpu}" \
      "seed=${seed}" "${data_overrides[@]}" "$@"
  grep -h -E 'finished after|is already done' "${exp_dir}/${name}/log/train.log" | tail -n 1 || true
}
# shellcheck disable=SC2206
data_overrides=("task.train_dump=${dump_dir}/${train_set}" "task.valid_dump=${dump_dir}/${valid_set}"
                ${train_opts})

train_array() {  # train_array NAME LIST: the trainings of LIST (see scripts/train_array.sh) as one job array
  local name=$1 list=$2 n line
  n=$(grep -c . "${list}" || true)
  if [ "${n}" -eq 0 ]; then
    log "  ${list} lists no training; nothing to do"
    return 0
  fi
  log "  ${n} trainings (${list}); logs: ${exp_dir}/log/${name}.*.log"
  ${cuda_cmd} --gpu "${ngpu}" JOB=1:"${n}" "${exp_dir}/log/${name}.JOB.log" \
    scripts/train_array.sh "${list}" JOB "${ngpu}" "seed=${seed}" "${data_overrides[@]}"
  for line in $(seq 1 "${n}"); do
    printf '    %s: ' "$(sed -n "${line}p" "${list}" | cut -d' ' -f1)"
    grep -h -E 'finished after|is already done' "${exp_dir}/log/${name}.${line}.log" | tail -n 1 || echo
  done
}

resolve_target_sources() {  # --target-sources, or else every source of the training data directory
  [ -z "${target_sources// /}" ] || return 0
  local file="${data_dir}/${train_set}/sources"
  if [ ! -f "${file}" ]; then
    log "ERROR: ${file} does not exist: run stage 1 first, or give --target-sources"
    exit 1
  fi
  target_sources=$(cat "${file}")
  log "  target sources (${file}): ${target_sources}"
}

stage_mss() {
  local list="${exp_dir}/log/mss.list" source
  resolve_target_sources
  mkdir -p "${exp_dir}/log"
  for source in ${target_sources}; do
    echo "${exp_dir}/mss/${source} ${conf_dir}/mss.yaml model.target_sources=[${source}]"
  done > "${list}"
  train_array mss "${list}"
}

stage_triplet() {  # the stage's models do not depend on each other: one job array
  local list="${exp_dir}/log/triplet.list" name
  mkdir -p "${exp_dir}/log"
  for name in ${triplet_models}; do
    [ -f "${conf_dir}/${name}.yaml" ] || { log "ERROR: ${conf_dir}/${name}.yaml does not exist"; exit 1; }
    case "${name}" in
      cascade*) echo "${exp_dir}/${name} ${conf_dir}/${name}.yaml task.separators=${exp_dir}/mss/{source}" ;;
      *) echo "${exp_dir}/${name} ${conf_dir}/${name}.yaml" ;;
    esac
  done > "${list}"
  train_array triplet "${list}"
}

stage_e2e_ft() {
  train cascade_ft "${conf_dir}/cascade_ft.yaml" "task.init=${exp_dir}/cascade"
}

stage_direct() {
  # Direct's pre-training targets are Clean embeddings of EVERY source (residuals too, where stage 4's
  # Clean embeds the target instruments only, as in the paper), so a Clean over all sources comes first
  # (--direct-teacher; a recipe whose stage-4 Clean embeds every source names it), then the
  # pre-training toward its embeddings, then each variant from the pre-trained Direct.
  # The variants start from the same pre-trained model and do not depend on each other: one job array.
  case " ${triplet_models} " in
    *" ${direct_teacher} "*) ;;  # trained in stage 4
    *) train "${direct_teacher}" "${conf_dir}/${direct_teacher}.yaml" ;;
  esac
  train direct_pretrain "${conf_dir}/direct_pretrain.yaml" "task.clean=${exp_dir}/${direct_teacher}"
  local list="${exp_dir}/log/direct.list" name
  for name in ${direct_models}; do
    [ -f "${conf_dir}/${name}.yaml" ] || { log "ERROR: ${conf_dir}/${name}.yaml does not exist"; exit 1; }
    echo "${exp_dir}/${name} ${conf_dir}/${name}.yaml task.init=${exp_dir}/direct_pretrain"
  done > "${list}"
  train_array direct "${list}"
}

stage_paft() {
  local list="${exp_dir}/log/paft.list" model s init
  mkdir -p "${exp_dir}/log"
  for model in ${paft_models}; do
    case "${model}" in
      cascade_paft) init=cascade ;;       # Cascade-PAFT: E2E-FT and PAFT at once from the stage-4 Cascade
      *_normal) init=${model%_normal} ;;  # the "PAFT data: normal" rows of Table 5
      *) init=${model} ;;
    esac
    [ -f "${conf_dir}/paft_${model}.yaml" ] || { log "ERROR: ${conf_dir}/paft_${model}.yaml does not exist"; exit 1; }
    for s in ${paft_seeds}; do
      # The ABX split uses the recipe's seed, as scoring does; the run's own seed varies.
      echo "${exp_dir}/paft_${model}_${s} ${conf_dir}/paft_${model}.yaml task.init=${exp_dir}/${init}" \
        "task.abx_dir=${dump_dir}/abx task.abx_dump=${dump_dir}/${test_set} task.split_seed=${seed} seed=${s}"
    done
  done > "${list}"
  train_array paft "${list}"
}

stage_scoring() {
  local scores="${exp_dir}/scores" name paft separates family label listing
  local models=() sdr_models=() abx=() baselines=(mfcc_clean)
  local -A paft_run=()
  resolve_target_sources
  if [ -f "${dump_dir}/abx/inst_sim_abx_answers.csv" ]; then
    abx=(--abx-dir "${dump_dir}/abx")
  else
    log "  no ABX set (${dump_dir}/abx): perceptual agreement (Tables 1 and 5) skipped"
  fi
  # What is scored, and how, is what each finished experiment's config says it is (its experiment:
  # section): every one to be scored, or those of --score-models.
  # shellcheck disable=SC2086
  listing=$(inmsrl experiments --exp-dir "${exp_dir}" ${score_models:+--models ${score_models}})
  while IFS=$'\t' read -r name paft separates family label; do
    case "${name}" in '#'*|'') continue ;; esac
    if [ "${paft}" != - ] && [ ${#abx[@]} -eq 0 ]; then
      log "  ${name} (${label}): a PAFT run, scored on ABX data only; skipped"
      continue
    fi
    log "  scoring ${name}: ${label} (family ${family}$([ "${paft}" != - ] && echo ", PAFT on ${paft} data"))"
    models+=("${name}")
    if [ "${paft}" != - ]; then
      paft_run[${name}]=1
    elif [ "${separates}" = true ]; then
      sdr_models+=("${name}")
    fi
  done <<< "${listing}"
  embed_model() {  # embed_model NAME MODEL-OPTIONS...: one job array of inmsrl embed
    local name=$1
    shift
    log "  embedding ${name}; logs: ${scores}/embeddings/${name}/log/embed.*.log"
    # shellcheck disable=SC2086
    ${decode_cmd} JOB=1:"${nj}" "${scores}/embeddings/${name}/log/embed.JOB.log" \
      inmsrl embed --dump "${dump_dir}/${test_set}" --out "${scores}/embeddings/${name}" --name "${name}" \
        --part JOB --num-parts "${nj}" --seed "${seed}" "${abx[@]}" "$@" ${score_opts}
  }
  sdr_job() {  # sdr_job NAME OPTIONS...: one job array of inmsrl sdr
    local name=$1
    shift
    log "  SDR of ${name}; logs: ${scores}/sdr/log/${name}.*.log"
    # shellcheck disable=SC2086
    ${decode_cmd} JOB=1:"${nj}" "${scores}/sdr/log/${name}.JOB.log" \
      inmsrl sdr --dump "${dump_dir}/${test_set}" --out "${scores}/sdr" --name "${name}" \
        --part JOB --num-parts "${nj}" "$@" ${sdr_opts}
  }
  for name in "${models[@]}"; do
    if [ -n "${paft_run[${name}]:-}" ]; then
      embed_model "${name}" --exp-dir "${exp_dir}/${name}" --sets abx  # Table 5 only
    else
      embed_model "${name}" --exp-dir "${exp_dir}/${name}"
    fi
  done
  # shellcheck disable=SC2086
  embed_model mfcc_clean --baseline mfcc-clean --sources ${target_sources}
  if [ -n "$(ls "${exp_dir}"/mss/*/done 2>/dev/null)" ]; then
    # shellcheck disable=SC2086
    embed_model mfcc_cascade --baseline mfcc-cascade --separators "${exp_dir}/mss/{source}" \
      --sources ${target_sources}
    baselines+=(mfcc_cascade)
  fi
  # shellcheck disable=SC2046
  sdr_job mixture --mixture --sources $(cat "${data_dir}/${test_set}/sources")
  for name in "${sdr_models[@]}"; do
    sdr_job "${name}" --exp-dir "${exp_dir}/${name}"
  done
  log "  scores -> ${scores}/scores.json (log: ${scores}/log/score.log)"
  ${train_cmd} "${scores}/log/score.log" \
    inmsrl score --scores-dir "${scores}" --models "${models[@]}" "${baselines[@]}" "${abx[@]}" \
      --seed "${seed}"
  # shellcheck disable=SC2086
  inmsrl report --scores-dir "${scores}" --out RESULTS.md --mean-sources ${target_sources} \
    --title "inmsrl results: $(basename "${PWD}")"
  log "  wrote RESULTS.md, RESULTS.json and RESULTS_tsne.png in ${PWD}"
}

stage_search() {
  # Pack the model, embed the test songs' mixtures with it, index them and search with the first one,
  # so a run ends with a search a user can repeat (README: "Use a trained model on your own music").
  local dir="${exp_dir}/search" model="${exp_dir}/${search_model}" query
  [ -f "${model}/done" ] || { log "ERROR: ${model} has not finished: train it (or pick --search-model)"; exit 1; }
  mkdir -p "${dir}"
  inmsrl pack "${model}" -o "${dir}/${search_model}.inmsrl"
  log "  embedding ${data_dir}/${test_set}/mix.scp; logs: ${dir}/log/embed.*.log"
  ${decode_cmd} JOB=1:"${nj}" "${dir}/log/embed.JOB.log" \
    inmsrl embed-files --model "${dir}/${search_model}.inmsrl" --scp "${data_dir}/${test_set}/mix.scp" \
      -o "${dir}/embeddings" --part JOB --num-parts "${nj}" --device cpu
  rm -rf "${dir}/index"  # built anew: the packed model may differ from the last run's
  inmsrl index --index "${dir}/index" "${dir}/embeddings"
  query=$(head -n 1 "${data_dir}/${test_set}/mix.scp" | cut -d' ' -f1)
  if [ -z "${search_weights}" ]; then
    resolve_target_sources
    search_weights="${target_sources%% *}=1"
  fi
  log "  example: inmsrl search --index ${dir}/index --query ${query} --weights ${search_weights} -k 5"
  inmsrl search --index "${dir}/index" --query "${query}" --weights "${search_weights}" -k 5
  log "  listen: inmsrl serve --index ${dir}/index  (then open http://127.0.0.1:8000/)"
}

run_stage 0 "corpus" stage_corpus
run_stage 1 "data preparation" stage_data
run_stage 2 "dump, segments and ABX preparation" stage_dump
run_stage 3 "MSS training" stage_mss
run_stage 4 "triplet training of Clean and Cascade extractors" stage_triplet
run_stage 5 "E2E-FT (Cascade-FT)" stage_e2e_ft
run_stage 6 "Direct family" stage_direct
run_stage 7 "PAFT" stage_paft paft_skipped
run_stage 8 "scoring" stage_scoring
run_stage 9 "search index and example search" stage_search

log "Finished in ${SECONDS} s. Stages run: ${stages_run[*]:-none}."
if [ ${#stages_skipped[@]} -gt 0 ]; then
  printf -v skipped '%s; ' "${stages_skipped[@]}"
  log "Stages skipped: ${skipped%; }."
fi
log "This command line is kept in ${exp_dir}/command_history.sh"
exit 0
}
