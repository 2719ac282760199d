# The script run on the lent H100 for text_serving_h100_v3_*.json (2026-11-26). The GPU
# machine has torch/transformers but not bentoml: .whl held the missing packages as
# Python 3.12 wheels (pip download --no-deps), .gpu/store the stored model entry with fp16
# weights (64 MiB carry limit), turned back into fp32 here before serving.
set -e
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
export PYTHONPATH=/tmp/site:$PWD PATH=/tmp/site/bin:$PATH PYTHONUNBUFFERED=1
H=/tmp/mlops; M=$H/bentoml/models/sst2-sentiment
mkdir -p $M && cp -r .gpu/store/a7paiwhj4c6ayax4 $M/ && printf a7paiwhj4c6ayax4 > $M/latest
python3 .gpu/fp32.py $M/a7paiwhj4c6ayax4
python3 -c "import bentoml, uvicorn, pydantic; print('bentoml', bentoml.__version__)"
TAG=sst2-sentiment:a7paiwhj4c6ayax4
python3 -m benchmarks.text_serving --home $H --model-tag $TAG --runs service --levels 1,64,256 --requests 5120 --output $OUT/text_serving_h100_1_worker.json || true
MLOPS_TEXT_SERVE_WORKERS=8 MLOPS_TEXT_SERVE_MAX_CONCURRENCY=2048 python3 -m benchmarks.text_serving --home $H --model-tag $TAG --runs service --levels 64,256 --requests 6000 --output $OUT/text_serving_h100_8_workers.json || true
tail -40 $H/bentoml-batched.log > $OUT/service_tail.log || true
