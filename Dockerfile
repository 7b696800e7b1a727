# One image for web, worker, beat and the migration job (docker-compose.yml and deploy/k8s pick the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=evpay.settings.production
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends curl && rm -rf /var/lib/apt/lists/*
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY . .
# collectstatic needs no secret: the local settings have the same STATIC_ROOT and storages.
RUN DJANGO_SETTINGS_MODULE=evpay.settings.local python manage.py collectstatic --noinput -v 0
# Every directory a volume is mounted on is created here and owned by the app user: a volume Docker creates
# on a missing path is root's, and prometheus_client (PROMETHEUS_MULTIPROC_DIR) then fails at django.setup().
# tests/test_deploy_compose.py checks this against docker-compose.yml and deploy/k8s.
RUN useradd --create-home --uid 10001 evpay \
    && mkdir -p /app/var /var/run/evpay-metrics \
    && chown evpay:evpay /app/var /var/run/evpay-metrics
USER evpay
EXPOSE 8000 9808
ENTRYPOINT ["/app/scripts/docker-entrypoint.sh"]
CMD ["gunicorn", "evpay.wsgi:application"]
