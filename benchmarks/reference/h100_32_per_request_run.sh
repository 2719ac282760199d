# The script run on the lent H100 for text_serving_h100_32_per_request*.json (2026-11-26);
# same carried wheels and model entry as h100_v3_run.sh.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
H=/tmp/mlops; M=$H/bentoml/models/sst2-sentiment
mkdir -p $M && cp -r .gpu/store/a7paiwhj4c6ayax4 $M/ && printf a7paiwhj4c6ayax4 > $M/latest
python3 .gpu/fp32.py $M/a7paiwhj4c6ayax4
TAG=sst2-sentiment:a7paiwhj4c6ayax4
A="--home $H --model-tag $TAG --levels 64 --requests 2000 --warmup 64 --texts-per-request 32"
python3 -m benchmarks.text_serving $A --runs raw,service --output $OUT/text_serving_h100_32_per_request.json || true
MLOPS_TEXT_SERVE_MAX_BATCH_SIZE=256 MLOPS_TEXT_SERVE_WARMUP_BATCH_SIZES='[1,32,64,256]' python3 -m benchmarks.text_serving $A --runs service --output $OUT/text_serving_h100_32_per_request_batch256.json || true
