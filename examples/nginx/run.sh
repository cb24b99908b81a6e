#!/bin/sh
# The instance command: a stock nginx in the foreground serving $NGINX_STATE/www on 127.0.0.1:$NGINX_PORT.
# Its configuration, pid file and temporary files live in $NGINX_STATE/run (not synced: each instance
# has its own port). A new primary's www/ is seeded from this recipe's www/; an echo's arrives by file
# sync, and nginx reads files per request, so a promoted echo serves at once (no reload).
set -eu
: "${NGINX_PORT:?NGINX_PORT is not set (the spec passes {port})}"
: "${NGINX_STATE:?NGINX_STATE is not set (the spec passes {stateDir})}"
here=$(cd "$(dirname "$0")" && pwd)
run="$NGINX_STATE/run"
mkdir -p "$NGINX_STATE/www" "$run/tmp"
if [ "${UNDERSTUDY_ROLE:-primary}" = primary ] && [ -z "$(ls -A "$NGINX_STATE/www")" ]; then
  cp -R "$here/www/." "$NGINX_STATE/www/"
fi
user=""
if [ "$(id -u)" -eq 0 ]; then
  # nginx's workers drop root: they must be able to reach and read www/ (o+x on the way, o+r on files).
  user="user ${NGINX_USER:-www-data};"
  d=$NGINX_STATE
  while [ "$d" != / ]; do chmod o+x "$d" 2>/dev/null || true; d=$(dirname "$d"); done
  chmod -R o+rX "$NGINX_STATE/www"
fi
cat >"$run/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $run/nginx.pid;
error_log stderr warn;
$user
events { worker_connections 256; }
http {
  access_log off;
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  client_body_temp_path $run/tmp/body;
  proxy_temp_path $run/tmp/proxy;
  fastcgi_temp_path $run/tmp/fastcgi;
  uwsgi_temp_path $run/tmp/uwsgi;
  scgi_temp_path $run/tmp/scgi;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $NGINX_STATE/www;
    location = /healthz { return 200 "ok\n"; }
  }
}
CONF
exec nginx -p "$run" -c "$run/nginx.conf" -e stderr
