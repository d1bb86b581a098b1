# CrackPortal image for web, inference worker and training worker (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md ./
COPY crackportal ./crackportal
COPY inference ./inference
COPY training ./training
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.14.1 torchvision==0.29.1 \
 || pip install torch==2.14.1 torchvision==0.29.1
RUN pip install .
COPY . .
RUN SECRET_KEY=build-only DEBUG=0 python manage.py collectstatic --no-input
EXPOSE 8000
CMD ["gunicorn", "crackportal.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--timeout", "120"]
