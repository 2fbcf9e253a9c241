# shellcheck shell=bash
# Sourced by scripts/bench-proxy.sh and scripts/bench-instructions.sh: the fast fake
# upstream both measure behind, nginx serving the fixtures of scripts/bench/fixtures.py.

# start_fake_upstream WORK: writes WORK/fixtures and WORK/nginx.conf, starts nginx on a
# free port, sets NGINX_PORT and NGINX_PID and appends the pid to STARTED_PIDS. The caller provides
# free_port and waits for the port itself.
start_fake_upstream() {
    local work="$1"
    python3 scripts/bench/fixtures.py "$work/fixtures"
    NGINX_PORT="$(free_port)"
    mkdir -p "$work/nginx-tmp"
    sed -e "s#@WORK@#$work#g; s#@FIXTURES@#$work/fixtures#g; s#@PORT@#$NGINX_PORT#g" \
        scripts/bench/nginx.conf.in >"$work/nginx.conf"
    nginx -e "$work/nginx-error.log" -p "$work" -c "$work/nginx.conf" >"$work/nginx.log" 2>&1 &
    NGINX_PID="$!"
    STARTED_PIDS+=("$NGINX_PID")
}
