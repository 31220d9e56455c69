# One image for web and default-queue workers (CPU torch: no CUDA in the web tier).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=config.settings
# WordNet 3.0 for the METEOR scorer comes from Debian, never a run-time download.
RUN apt-get update && apt-get install -y --no-install-recommends wordnet-base \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY config ./config
COPY core ./core
COPY annotate ./annotate
COPY preferences ./preferences
COPY modeltrain ./modeltrain
# Point TORCH_INDEX_URL at a CPU wheel index to keep the image small; empty means the default.
ARG TORCH_INDEX_URL=
RUN pip install --no-cache-dir "torch==2.13.0" ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} \
    && pip install --no-cache-dir .
COPY . .
# Settings refuse to load without a real SECRET_KEY; collecting static files needs none.
RUN SECRET_KEY=collectstatic-build-only python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["python", "-m", "config.serve"]
