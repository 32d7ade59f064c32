#!/bin/bash
# Starts a grain: the grain server, then nginx in front of it (sandstorm-http-bridge talks to
# nginx on port 8003). SANDSTORM=1 comes from the package's environment.
set -euo pipefail

mkdir -p /var/run /var/lib/nginx /var/log/nginx

/opt/app/target/release/desert-atlas serve &

# nginx answers 502 until the grain server listens; it starts in milliseconds.
for _ in $(seq 1 200); do
    if (exec 3<>/dev/tcp/127.0.0.1/3857) 2>/dev/null; then
        break
    fi
    sleep 0.05
done

exec /usr/sbin/nginx -c /opt/app/nginx/nginx.conf -g "daemon off;"
