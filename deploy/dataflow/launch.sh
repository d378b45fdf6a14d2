#!/usr/bin/env bash
# Build the wirestream Flex Template and launch (or update) the streaming job on Dataflow.
#
#   PROJECT=my-proj REGION=europe-west1 BUCKET=my-bucket REPO=europe-west1-docker.pkg.dev/my-proj/wirestream \
#   BOOTSTRAP=10.0.0.5:9092 deploy/dataflow/launch.sh [--update]
#
# Needs: gcloud (authenticated), docker with push rights to $REPO, a subnetwork that reaches the brokers.
# --update replaces the running job of the same name in place, keeping its state (dedup, boilerplate memory,
# near-dup bands, offsets): step labels are stable (pipeline/builder.py), so the update is compatible.
set -euo pipefail
cd "$(dirname "$0")/../.."

: "${PROJECT:?}" "${REGION:?}" "${BUCKET:?}" "${REPO:?}" "${BOOTSTRAP:?}"
VERSION=${VERSION:-$(python -c "import pipeline; print(pipeline.__version__)")}
JOB=${JOB:-wirestream}
INPUT=${INPUT:-raw-articles}
OUTPUT=${OUTPUT:-articles}
MAX_WORKERS=${MAX_WORKERS:-10}
MACHINE=${MACHINE:-n2-standard-4}
SUBNET=${SUBNET:-regions/${REGION}/subnetworks/default}

SDK_IMAGE="${REPO}/wirestream-sdk:${VERSION}"
LAUNCHER_IMAGE="${REPO}/wirestream-launcher:${VERSION}"
TEMPLATE="gs://${BUCKET}/templates/wirestream-${VERSION}.json"

docker build -f deploy/container/Dockerfile -t "${SDK_IMAGE}" .
docker build -f deploy/dataflow/Dockerfile -t "${LAUNCHER_IMAGE}" .
docker push "${SDK_IMAGE}"
docker push "${LAUNCHER_IMAGE}"

gcloud dataflow flex-template build "${TEMPLATE}" \
  --project "${PROJECT}" \
  --image "${LAUNCHER_IMAGE}" \
  --sdk-language PYTHON \
  --metadata-file deploy/dataflow/metadata.json

UPDATE=()
if [[ "${1:-}" == "--update" ]]; then
  UPDATE=(--parameters update=true)
fi

# Streaming Engine keeps keyed state and timers in the Dataflow backend (smaller workers, faster
# autoscaling); throughput-based autoscaling scales on backlog between 1 and MAX_WORKERS workers.
gcloud dataflow flex-template run "${JOB}" \
  --project "${PROJECT}" \
  --region "${REGION}" \
  --template-file-gcs-location "${TEMPLATE}" \
  --enable-streaming-engine \
  --worker-machine-type "${MACHINE}" \
  --max-workers "${MAX_WORKERS}" \
  --num-workers 1 \
  --subnetwork "${SUBNET}" \
  --disable-public-ips \
  --temp-location "gs://${BUCKET}/tmp" \
  --staging-location "gs://${BUCKET}/staging" \
  --additional-experiments "use_runner_v2" \
  --parameters "sdk_container_image=${SDK_IMAGE}" \
  --parameters "autoscaling_algorithm=THROUGHPUT_BASED" \
  --parameters "bootstrap_servers=${BOOTSTRAP}" \
  --parameters "input_topic=${INPUT}" \
  --parameters "output_topic=${OUTPUT}" \
  "${UPDATE[@]}"
