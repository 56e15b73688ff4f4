# The Cloud Run worker: python -m worker, serving /healthz and /metrics on $PORT.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PORT=8080
WORKDIR /app

COPY functions/requirements.txt functions/requirements.txt
COPY worker/requirements.txt worker/requirements.txt
RUN pip install --no-cache-dir -r functions/requirements.txt -r worker/requirements.txt

# The one copy of the trading core and the Firestore services, from functions/.
COPY functions/cogmora_core /app/cogmora_core
COPY functions/cogmora_backend /app/cogmora_backend
COPY worker /app/worker

RUN useradd --system --uid 10001 worker
USER worker
EXPOSE 8080
CMD ["python", "-m", "worker"]
