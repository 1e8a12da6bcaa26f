#!/usr/bin/env bash
# Usage: [GPUS=8 GPUS_PER_NODE=8 CPUS_PER_TASK=5 SIGNAL_LEAD=180] tools/slurm_train.sh PARTITION JOB_NAME CONFIG [WORK_DIR] [train.py args]
#
# Preemption and time limits: Slurm sends SIGTERM on preemption, and srun --signal sends SIGUSR1
# SIGNAL_LEAD seconds before the time limit. train.py then finishes its iteration, saves a
# checkpoint and exits with code 75; this script requeues the job (scontrol requeue inside an
# sbatch allocation, a new srun otherwise), and the requeued run resumes with --resume.
set -x
PARTITION=$1
JOB_NAME=$2
CONFIG=$3
WORK_DIR=${4:-}
GPUS=${GPUS:-8}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
CPUS_PER_TASK=${CPUS_PER_TASK:-5}
SIGNAL_LEAD=${SIGNAL_LEAD:-180}
SRUN_ARGS=${SRUN_ARGS:-""}
PY_ARGS=${@:5}
WORK_DIR_ARG=${WORK_DIR:+--work-dir=$WORK_DIR}
REQUEUE_EXIT_CODE=75
# A job that Slurm requeued (SLURM_RESTART_COUNT > 0) resumes from its last checkpoint.
RESUME_ARG=""
if [ "${SLURM_RESTART_COUNT:-0}" -gt 0 ]; then RESUME_ARG=--resume; fi

while true; do
    PYTHONPATH="$(dirname "$0")/..":$PYTHONPATH \
    srun -p "${PARTITION}" \
        --job-name="${JOB_NAME}" \
        --gres=gpu:"${GPUS_PER_NODE}" \
        --ntasks="${GPUS}" \
        --ntasks-per-node="${GPUS_PER_NODE}" \
        --cpus-per-task="${CPUS_PER_TASK}" \
        --kill-on-bad-exit=1 \
        --signal=USR1@"${SIGNAL_LEAD}" \
        ${SRUN_ARGS} \
        python -u "$(dirname "$0")/train.py" "${CONFIG}" ${WORK_DIR_ARG} --launcher="slurm" \
        ${RESUME_ARG} ${PY_ARGS}
    status=$?
    [ "$status" -eq "$REQUEUE_EXIT_CODE" ] || exit "$status"
    if [ -n "${SLURM_JOB_ID:-}" ]; then
        # Inside an sbatch allocation that is ending: put the whole job back in the queue.
        scontrol requeue "$SLURM_JOB_ID"
        exit 0
    fi
    echo "training was stopped by a signal after saving a checkpoint; resuming" >&2
    RESUME_ARG=--resume
done
