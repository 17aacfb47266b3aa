# A shop worker: `faust -A app.worker worker`. Built by docker-compose.yml.
FROM python:3.11-slim

# an unprivileged user owns the worker's data dir; a new volume mounted on /data (as in
# docker-compose.yml) takes the ownership of the image's /data, so the worker can write it
RUN groupadd --system --gid 10001 shop \
 && useradd --system --uid 10001 --gid shop --create-home shop \
 && mkdir /data \
 && chown shop:shop /data

WORKDIR /srv/shop
# The dependencies first, in a layer of their own (a change to the code does not
# reinstall them), at the versions CI tests: constraints.txt (scripts/constraints.py).
COPY pyproject.toml constraints.txt ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" >/tmp/requirements.txt \
 && pip install --no-cache-dir --disable-pip-version-check -c constraints.txt -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# the project itself: its packages only (no bench/, no tests/: .dockerignore keeps them
# out of the build context), then a check that what is installed is consistent
COPY README.md ./
COPY app ./app
COPY models ./models
COPY domain ./domain
COPY agents ./agents
COPY tables ./tables
COPY web ./web
RUN pip install --no-cache-dir --disable-pip-version-check --no-deps -c constraints.txt . \
 && pip check

USER 10001:10001
ENV WEB_BIND=0.0.0.0 PYTHONUNBUFFERED=1
EXPOSE 6066
# healthy once the worker takes commands: GET /health answers 200 when it owns its
# partitions and has caught up with their logs, 503 before (web/ops.py). Not /ops/ready:
# that one also turns 503 on lag, and a worker behind under load is not an unhealthy one.
# python, since the slim image has no curl; urlopen raises on a 503 or a refused connection.
HEALTHCHECK --interval=10s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:6066/health', timeout=4)"]
CMD ["faust", "-A", "app.worker", "-D", "/data", "-L", "uvloop", "worker", "-l", "info", "-p", "6066"]
