# One image for the ingest service, the workers, the dashboard and dbt (see docker-compose.yml).
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY ingest_service ingest_service
COPY worker worker
COPY wa_analytics wa_analytics
COPY dashboard dashboard
# The base and dbt (the transform runs from this image too); no embedded servers, no test tools.
RUN pip install --no-cache-dir -e '.[transform]'
COPY dbt_project.yml selectors.yml ./
COPY dbt_project dbt_project
COPY profiles profiles
ENV WA_ENV=production PYTHONUNBUFFERED=1
EXPOSE 8000 8050
CMD ["wa-analytics", "serve", "--host", "0.0.0.0", "--port", "8000"]
