# iEvents checkout: one image for the web (gunicorn), the worker and beat (Celery).
# docker-compose.yml runs it with PostgreSQL and Redis; see docs/docker.md.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IEVENTS_VAR_DIR=/app/var

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. psycopg[binary] and
# cryptography ship wheels: no compiler needed.
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .

# Static files are collected at build time (WhiteNoise serves them with a manifest).
# Settings refuse to load without production secrets when DEBUG=0, so the build passes
# throwaway ones that exist only for this command and are not kept in the image.
RUN DEBUG=0 \
    SECRET_KEY=build-only-collectstatic-key-not-used-at-runtime-0123456789abcdef \
    FIELD_ENCRYPTION_KEYS=YnVpbGQtb25seS1jb2xsZWN0c3RhdGljLWtleS0wMDA= \
    ALLOWED_HOSTS=build DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    sh -c 'python manage.py collectstatic --noinput -v0 && pybabel -q compile -d locale -D django' \
 && useradd --system --uid 10001 --home-dir /app ievents \
 && mkdir -p /app/var && chown -R ievents /app/var

USER ievents
EXPOSE 8000

# The web by default; compose overrides the command for the worker and beat.
# gunicorn.conf.py masks provider secrets in the access and error logs.
CMD ["gunicorn", "ievents.wsgi:application", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "4", \
     "--access-logfile", "-"]
