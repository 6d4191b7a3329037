# The demo upstream ("who am I" page, Python standard library only).
# Build context: the repository root.
#   docker build -f deploy/docker/demo-upstream.Dockerfile -t alb-oidc-demo-upstream .
FROM python:3.13-slim
COPY envoy/demo_upstream.py /app/demo_upstream.py
USER 65534:65534
EXPOSE 8080
ENTRYPOINT ["python", "-u", "/app/demo_upstream.py"]
CMD ["--host", "0.0.0.0", "--port", "8080"]
