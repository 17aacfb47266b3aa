# A shop worker: `faust -A app.worker worker`. Built by docker-compose.yml.
FROM python:3.11-slim
WORKDIR /srv/shop
COPY pyproject.toml README.md ./
COPY app ./app
COPY models ./models
COPY domain ./domain
COPY agents ./agents
COPY tables ./tables
COPY web ./web
COPY bench ./bench
RUN pip install --no-cache-dir .
ENV WEB_BIND=0.0.0.0 PYTHONUNBUFFERED=1
EXPOSE 6066
CMD ["faust", "-A", "app.worker", "-D", "/data", "worker", "-l", "info", "-p", "6066"]
