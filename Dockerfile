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
# The CPU build of torch first (the embedding model runs on the CPU); PyPI's default is a CUDA build of several GB.
RUN pip install --index-url https://download.pytorch.org/whl/cpu torch==2.13.0 \
    && pip install . && useradd --create-home bounty
USER bounty
ENTRYPOINT ["bounty"]
CMD ["run", "--no-workers"]
