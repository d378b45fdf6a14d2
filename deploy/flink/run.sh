#!/usr/bin/env bash
# Submit wirestream to the Flink cluster of flinkdeployment.yaml (from a machine that reaches its REST port,
# e.g. after `kubectl -n wirestream port-forward svc/wirestream-rest 8081`).
#
#   BOOTSTRAP=kafka-0.kafka:9092 deploy/flink/run.sh
#
# FlinkRunner with --flink_submit_uber_jar builds one jar (Beam's Flink job server + the pipeline) and
# submits it over Flink's REST API: no job server to run, no Java on this machine. The Python steps run in
# the SDK worker-pool sidecars (EXTERNAL environment at localhost:50000 inside each TaskManager pod).
set -euo pipefail
: "${BOOTSTRAP:?}"
FLINK_MASTER=${FLINK_MASTER:-localhost:8081}

wirestream run \
  --runner=FlinkRunner \
  --flink_master="${FLINK_MASTER}" \
  --flink_version=1.20 \
  --flink_submit_uber_jar \
  --environment_type=EXTERNAL \
  --environment_config=localhost:50000 \
  --streaming \
  --parallelism=4 \
  --checkpointing_interval=60000 \
  --job_name=wirestream \
  --bootstrap-servers="${BOOTSTRAP}" \
  --input-topic=raw-articles \
  --output-topic=articles \
  --dead-letter-topic=articles.dead-letter \
  --group-id=wirestream \
  "$@"

# With the job server of jobserver.yaml instead (needed for --kafka-io=xlang: its expansion service):
#   wirestream run --runner=PortableRunner --job_endpoint=beam-flink-job-server:8099 \
#     --artifact_endpoint=beam-flink-job-server:8098 --environment_type=EXTERNAL \
#     --environment_config=localhost:50000 --streaming --checkpointing_interval=60000 \
#     --kafka-io=xlang --expansion-service=beam-flink-job-server:8097 ...
