# One image for web and worker; REQUIREMENTS picks what is installed:
#   web    -> requirements/web.txt   (Django, no torch: small and fast to start)
#   worker -> requirements/worker.txt (adds torch and the model package)
FROM python:3.11-slim-bookworm

ARG REQUIREMENTS=web
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN apt-get update \
    && apt-get install -y --no-install-recommends libgl1 libglib2.0-0 libldap-2.5-0 libsasl2-2 \
       postgresql-client \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 triage

WORKDIR /app
COPY requirements/ requirements/
# python-ldap (LDAP sign-in) is built from source here: its compiler and headers are installed
# and removed in this one layer, so the image keeps only the libraries above.
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev libldap-dev libsasl2-dev \
    && pip install -r requirements/${REQUIREMENTS}.txt \
    && pip install --no-deps -r requirements/no-deps.txt \
    && apt-get purge -y --auto-remove gcc libc6-dev libldap-dev libsasl2-dev \
    && rm -rf /var/lib/apt/lists/* \
    && python -c "import ldap"

COPY manage.py pyproject.toml ./
COPY webapp/ webapp/
COPY workers/ workers/
COPY ml/ ml/
COPY deploy/ deploy/

RUN mkdir -p /app/var /data/private-media \
    && DJANGO_SETTINGS_MODULE=webapp.settings.production DJANGO_SECRET_KEY=collectstatic-only \
       DJANGO_ALLOWED_HOSTS=build DATABASE_URL=sqlite:////tmp/build.sqlite3 CELERY_BROKER_URL=memory:// \
       python manage.py collectstatic --noinput \
    && chown -R triage:triage /app/var /data

USER triage
ENV DJANGO_SETTINGS_MODULE=webapp.settings.production \
    PRIVATE_MEDIA_ROOT=/data/private-media \
    GUNICORN_BIND=0.0.0.0:8000
EXPOSE 8000
CMD ["gunicorn", "webapp.wsgi", "-c", "deploy/gunicorn.conf.py"]
