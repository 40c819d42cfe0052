# The production image: the same `bounty` command runs migrations, workers, beat and each bot.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md alembic.ini ./
COPY core core
COPY bots bots
COPY workers workers
COPY cli cli
COPY benchmarks benchmarks
COPY migrations migrations
RUN pip install . && useradd --create-home bounty
USER bounty
ENTRYPOINT ["bounty"]
CMD ["run", "--no-workers"]
