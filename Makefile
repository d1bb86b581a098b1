# CrackPortal entry points. `make demo` and `make test` bootstrap everything they need.
DATASETS = cfd deepcrack masonry concrete-uav tunnel-lining

.PHONY: help install demo test test-fast lint format migrate worker serve bench bench-map bench-load train evaluate

help:
	@echo "make demo       run the portal with a demo tunnel on http://127.0.0.1:8000 (SQLite + local worker)"
	@echo "make test       run the whole test suite (bootstraps .venv; uses DATABASE_URL/REDIS_URL if set)"
	@echo "make test-fast  unit tests only (no worker, no browser, nothing marked slow)"
	@echo "make lint       ruff check"
	@echo "make worker     a Celery worker (inference, training, maintenance queues) with the sweeper clock (-B)"
	@echo "make serve      the development server on :8000 (no worker)"
	@echo "make evaluate   the shipped model on every test split of ../shared/datasets: one row per dataset"
	@echo "make bench      inference throughput: default model vs the seed's DeepLabV3+MobileNetV2"
	@echo "make bench-map  crack-map data request time for a tunnel with 5,000 cracks"
	@echo "make bench-load inspectors browse while 1,000 images upload and 2 workers process them"
	@echo "make train      CPU recipe (~15 min): fine-tune the shipped default on all five ../shared/datasets (GPU recipe: training/gpu_recipe.sh, MODEL_CARD.md)"

install:
	scripts/bootstrap.sh

demo:
	scripts/demo.sh

test:
	scripts/test.sh

test-fast: install
	.venv/bin/python -m pytest -m "not integration and not browser and not slow"

lint: install
	.venv/bin/ruff check .

format: install
	.venv/bin/ruff format .

migrate: install
	.venv/bin/python manage.py migrate

worker: install
	.venv/bin/python -m celery -A crackportal worker -B -Q inference,training,maintenance --concurrency 1 --loglevel INFO

serve: install
	DEBUG=1 .venv/bin/python manage.py runserver 127.0.0.1:8000

evaluate: install
	.venv/bin/python -m training.evaluate --split test $(foreach d,$(DATASETS),--data ../shared/datasets/$(d))

bench: install
	.venv/bin/python -m inference.bench

bench-map: install
	DEBUG=1 .venv/bin/python manage.py migrate --no-input
	DEBUG=1 .venv/bin/python manage.py bench_map

bench-load: install
	.venv/bin/python scripts/load_bench.py --images 1000 --inspectors 8 --workers 2

train: install
	.venv/bin/python -m training.train --config training/configs/unet-mobilenetv2-cpu-real.json \
		--init models/default $(foreach d,$(DATASETS),--data ../shared/datasets/$(d)) \
		--out runs/cpu-real --export runs/export/cpu-real