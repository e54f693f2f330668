#!/usr/bin/env bash
# Mixed IMAP workload against Roost and Debian's Dovecot (maildir), same
# machine, same run, same client (bench/imapload). Prints both figures and
# the ratio. Needs root (installs dovecot-imapd; creates a vmail user).
#   [ROUNDS=n] [SEED=m] [LOADFLAGS=...] bash bench/imap-vs-dovecot.sh [duration] [clients...]
# ROUNDS (default 1) repeats each client count, alternating which server
# goes first, so that noise from other work on a shared machine shows up
# as spread between rounds instead of as a difference between servers.
# SEED (default 200) is the size of each client's mailbox: it is filled
# in the first round only, and the workload's APPEND and EXPUNGE keep it
# there, so every round measures the same size. Each client count has
# accounts of its own. LOADFLAGS adds imapload flags to every run, e.g.
# LOADFLAGS=-by-command for each command's mean latency on both servers.
# DOVECOT_FSYNC (default: Dovecot's own default, optimized, which syncs
# "whenever necessary to avoid losing important data") sets its
# mail_fsync: "always" makes Dovecot sync every write before it answers, as
# Roost does, for a comparison at equal durability.
# ROOST_FLAG_SYNC (default: always) sets Roost's store.flag_sync;
# "deferred" answers a flag change before it is synced, as Dovecot's
# default does. The two like-for-like pairs: DOVECOT_FSYNC=always with
# Roost's default, and ROOST_FLAG_SYNC=deferred with Dovecot's.
set -euo pipefail
cd "$(dirname "$0")/.."
DUR=${1:-10s}; shift || true
CLIENTS=("${@:-1 50}")
[ ${#CLIENTS[@]} -eq 1 ] && read -r -a CLIENTS <<<"${CLIENTS[0]}"
ROUNDS=${ROUNDS:-1}
SEED=${SEED:-200}
NUSERS=0
for n in "${CLIENTS[@]}"; do NUSERS=$((NUSERS + n)); done
W=$(mktemp -d /tmp/roost-bench.XXXXXX)
# mktemp makes the dir 0700; Dovecot's imap and auth processes run as
# vmail/dovecot and must reach the maildirs and the passwd-file below it.
chmod 755 "$W"
cleanup() {
  rc=$?
  kill $(jobs -p) 2>/dev/null
  [ -f "$W/dovecot.pid" ] && kill "$(cat "$W/dovecot.pid")" 2>/dev/null
  # Both write into $W until they are gone: wait, or rm races them.
  for _ in $(seq 50); do
    [ -z "$(jobs -p)" ] && ! { [ -f "$W/dovecot.pid" ] && kill -0 "$(cat "$W/dovecot.pid")" 2>/dev/null; } && break
    sleep 0.1
  done
  if [ "$rc" -eq 0 ]; then rm -rf "$W"; else echo "failed; logs kept in $W" >&2; fi
}
trap cleanup EXIT

. bench/lib.sh
install_missing /usr/lib/dovecot/imap dovecot-imapd
service dovecot stop >/dev/null 2>&1 || true
vmail_user

go build -o "$W/roost" ./cmd/roost
go build -o "$W/imapload" ./bench/imapload

ports_free 21143 21144

# --- Dovecot: maildir, passwd-file users, plaintext on loopback.
mkdir -p "$W/dovecot/mail" "$W/dovecot/run"; chown -R vmail:vmail "$W/dovecot/mail"
: >"$W/dovecot/users"
for i in $(seq 0 $((NUSERS-1))); do echo "bench$i@bench.test:{PLAIN}benchpw" >>"$W/dovecot/users"; done
cat >"$W/dovecot/dovecot.conf" <<CONF
protocols = imap
listen = 127.0.0.1
base_dir = $W/dovecot/run
log_path = $W/dovecot/log
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
mail_location = maildir:$W/dovecot/mail/%u
mail_uid = vmail
mail_gid = vmail
first_valid_uid = 1
${DOVECOT_FSYNC:+mail_fsync = $DOVECOT_FSYNC}
passdb {
  driver = passwd-file
  args = $W/dovecot/users
}
userdb {
  driver = static
  args = uid=vmail gid=vmail home=$W/dovecot/mail/%u
}
service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = 21143
  }
  inet_listener imaps {
    port = 0
  }
}
CONF
dovecot -c "$W/dovecot/dovecot.conf"
sleep 1
cp "$W/dovecot/run/master.pid" "$W/dovecot.pid" 2>/dev/null || true

# --- Roost: embedded store.
cat >"$W/roost.toml" <<CONF
hostname = "bench.test"
data_dir = "$W/roost-data"
[store]
flag_sync = "${ROOST_FLAG_SYNC:-always}"
CONF
roost_listen_only imap 127.0.0.1:21144 >>"$W/roost.toml"
export ROOST_CONFIG="$W/roost.toml"
"$W/roost" domain add bench.test
for i in $(seq 0 $((NUSERS-1))); do echo benchpw | "$W/roost" user add "bench$i@bench.test" --password-stdin >/dev/null; done
roost_serve "$W" 127.0.0.1:21144

# load NAME ADDR LOG CLIENTS: one imapload run; on failure show the
# server's log tail, since imapload only sees the tagged NO/BAD.
load() {
  if ! "$W/imapload" -addr "$2" -user 'bench%d@bench.test' -pass benchpw -clients "$4" -duration "$DUR" -first "$FIRST" -seed "$SEEDNOW" ${LOADFLAGS:-}; then
    echo "imapload against $1 failed; its log:" >&2
    tail -20 "$3" >&2
    return 1
  fi
}
FIRST=0
for n in "${CLIENTS[@]}"; do
  RATIOS=()
  for round in $(seq "$ROUNDS"); do
    SEEDNOW=$SEED; [ "$round" -gt 1 ] && SEEDNOW=0
    if [ $((round % 2)) -eq 1 ]; then
      d=$(load dovecot 127.0.0.1:21143 "$W/dovecot/log" "$n")
      r=$(load roost 127.0.0.1:21144 "$W/roost.log" "$n")
    else
      r=$(load roost 127.0.0.1:21144 "$W/roost.log" "$n")
      d=$(load dovecot 127.0.0.1:21143 "$W/dovecot/log" "$n")
    fi
    dc=${d##*commands_per_sec=}; dc=${dc%% *}
    rc=${r##*commands_per_sec=}; rc=${rc%% *}
    echo "round=$round dovecot $d"
    echo "round=$round roost   $r"
    awk -v r="$rc" -v d="$dc" -v n="$n" -v m="$SEED" 'BEGIN{printf "clients=%d messages=%d roost/dovecot = %.2fx\n", n, m, r/d}'
    RATIOS+=("$(awk -v r="$rc" -v d="$dc" 'BEGIN{printf "%.4f", r/d}')")
  done
  # Dovecot's rate moves from run to run more than Roost's: the median
  # of the rounds is the figure to compare across runs.
  printf '%s\n' "${RATIOS[@]}" | sort -n | awk -v n="$n" -v m="$SEED" '{v[NR]=$1} END{med=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "clients=%d messages=%d median of %d rounds roost/dovecot = %.2fx\n", n, m, NR, med}'
  FIRST=$((FIRST + n))
done
