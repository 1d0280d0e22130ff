# Slim image that runs `remediator serve` as a non-root user.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY remediator ./remediator
COPY integrations ./integrations
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/remediator --create-home remediator
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
WORKDIR /etc/remediator
COPY rules ./rules
COPY playbooks ./playbooks
ENV REMEDIATOR_DATABASE_URL=sqlite+aiosqlite:////var/lib/remediator/remediator.db
# ansible-runner's per-run files: somewhere the unprivileged user may write.
ENV REMEDIATOR_REMEDIATION__DATA_DIR=/var/lib/remediator/runs
USER remediator
EXPOSE 9095
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9095/healthz')"
ENTRYPOINT ["remediator"]
CMD ["serve"]
