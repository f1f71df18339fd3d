# Run the checks in a new process, without going through the server.
HEALTHCHECK --interval=30s --timeout=10s --start-period=15s --retries=3 \
  CMD ["dockerflow-wsgi", "heartbeat", "--app", "myservice.wsgi:application"]
