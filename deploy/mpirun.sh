#!/bin/bash
# ringswarm under Open MPI: the coordinator here, one `ringswarm worker` per MPI rank. Each worker
# takes its rank from OMPI_COMM_WORLD_RANK and checks OMPI_COMM_WORLD_SIZE against --workers.
# Usage: deploy/mpirun.sh [hostfile]
set -euo pipefail
WORKERS=${WORKERS:-8}
PORT=${PORT:-7400}
export RINGSWARM_TOKEN=${RINGSWARM_TOKEN:-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')}
HEAD=${HEAD:-$(hostname)}

ringswarm run --workers "$WORKERS" --spawn 0 --host 0.0.0.0 --advertise "$HEAD" --port "$PORT" --token "$RINGSWARM_TOKEN" &
COORD=$!
mpirun ${1:+--hostfile "$1"} -np "$WORKERS" -x RINGSWARM_TOKEN -x RINGSWARM_COORDINATOR="$HEAD:$PORT" \
  ringswarm worker --host 0.0.0.0
wait "$COORD"
