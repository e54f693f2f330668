# Shell helpers shared by the bench/*-vs-*.sh comparisons; source it.

# install_missing FILE PACKAGE...: installs the Debian packages unless FILE
# (a program they bring) is there already. A server package must not start its system
# service: invoke-rc.d asks policy-rc.d, and 101 means "not now".
install_missing() {
  local file=$1; shift
  [ -e "$file" ] && return 0
  printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

# vmail_user: the user the compared mail servers store mail as.
vmail_user() {
  id vmail >/dev/null 2>&1 || useradd -r -M -d /nonexistent -s /usr/sbin/nologin vmail
}

# ports_free PORT...: fails when one is taken. A server left on one from an
# earlier run would answer in place of the one this run starts, and be
# measured instead.
ports_free() {
  local port
  for port in "$@"; do
    if (exec 3<>/dev/tcp/127.0.0.1/"$port") 2>/dev/null; then
      echo "port $port is already in use; stop whatever listens there first" >&2
      return 1
    fi
  done
}

# roost_listen_only KEY ADDR: the end of a roost.toml for a benchmark: only
# listener KEY (smtp, imap, ...), on ADDR, and cheap password hashing,
# since logins and 'user add' are set-up, not measured.
roost_listen_only() {
  local k
  echo "[listen]"
  for k in smtp submission submissions imap imaps pop3 pop3s http; do
    if [ "$k" = "$1" ]; then echo "$k = [\"$2\"]"; else echo "$k = []"; fi
  done
  printf '[auth]\nargon2_time = 1\nargon2_memory_kib = 1024\nargon2_threads = 1\n'
}

# roost_serve W ADDR: starts "$W/roost" serve (config from ROOST_CONFIG,
# log in $W/roost.log) and waits until ADDR answers; sets ROOST_PID.
roost_serve() {
  "$1/roost" serve >"$1/roost.log" 2>&1 &
  ROOST_PID=$!
  for _ in $(seq 50); do (exec 3<>/dev/tcp/"${2%:*}"/"${2##*:}") 2>/dev/null && break; sleep 0.2; done
  if ! kill -0 "$ROOST_PID" 2>/dev/null; then
    echo "roost did not start; its log:" >&2
    tail -5 "$1/roost.log" >&2
    return 1
  fi
}
