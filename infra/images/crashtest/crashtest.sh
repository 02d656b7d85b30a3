#!/bin/sh
# A service that cannot find its configuration: it says so on stderr, writes a crash report
# inside the container and exits 1. Nothing is kept outside the container.
log=/var/log/crashtest
mkdir -p "$log"
echo "crashtest: starting (pid $$)"
echo "$(date -u '+%Y-%m-%dT%H:%M:%SZ') starting" >> "$log/app.log"
for step in 1 2; do
  echo "crashtest: warming up ($step/2)"
  echo "$(date -u '+%Y-%m-%dT%H:%M:%SZ') warming up $step" >> "$log/app.log"
  sleep 1
done
config=${CRASHTEST_CONFIG:-/etc/crashtest/config.ini}
if [ -r "$config" ]; then
  echo "crashtest: read $config; running"
  exec sleep 2147483647
fi
cat > "$log/crash.log" <<REPORT
crashtest crash report
time:   $(date -u '+%Y-%m-%dT%H:%M:%SZ')
error:  configuration file $config not found
cause:  the service needs $config (or CRASHTEST_CONFIG pointing at one)
exit:   1
REPORT
echo "crashtest: fatal: cannot read $config (report in $log/crash.log)" >&2
exit 1
