# Ask the running server, as a load balancer would (the slim images have no curl).
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/__heartbeat__', timeout=8)"]
