#!/usr/bin/env bash
# Inbound mail, same machine, same run, same client (bench/smtpload):
# Roost's MX port against Debian's Postfix handing mail to Dovecot over
# LMTP (maildir), the usual pair. Needs root (installs postfix and
# dovecot-lmtpd; creates a vmail user).
#   [ROUNDS=n] [N=messages] [RCPTS=k] [KEEP=1] bash bench/mx-vs-postfix.sh [clients...]
# Each round sends N (default 4000) 10 KB messages from each client count
# (default 16) to both servers, alternating which goes first. KEEP=1
# keeps the work directory (logs, maildirs, store) for a look afterwards.
#
# What is timed differs by design, and the script prints both:
# - Roost answers 250 only once the message is durable in every
#   recipient's INBOX, so its accepted rate is its delivered rate.
# - Postfix answers 250 once the message is durable in its queue; its
#   queue manager then hands it to Dovecot, which writes and syncs the
#   maildir file. "delivered" is the time until every message is a file
#   in a maildir (polled every 0.1 s), the figure that compares with Roost's.
# Both sync what they acknowledge: Postfix fsyncs its queue file before
# the 250, Dovecot (mail_fsync = optimized, its default) syncs a new
# message before LMTP's 250, Roost commits with synchronous=FULL.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS=("${@:-16}")
[ ${#CLIENTS[@]} -eq 1 ] && read -r -a CLIENTS <<<"${CLIENTS[0]}"
ROUNDS=${ROUNDS:-1}
N=${N:-4000}
RCPTS=${RCPTS:-1}
W=$(mktemp -d /tmp/roost-mxbench.XXXXXX)
# Postfix's lmtp client and Dovecot's lmtp run as other users and must
# reach the socket and maildirs below it.
chmod 755 "$W"
PF="$W/postfix"
cleanup() {
  rc=$?
  kill $(jobs -p) 2>/dev/null
  postfix -c "$PF/conf" stop >/dev/null 2>&1 || true
  [ -f "$W/dovecot/run/master.pid" ] && kill "$(cat "$W/dovecot/run/master.pid")" 2>/dev/null
  for _ in $(seq 50); do
    [ -z "$(jobs -p)" ] && ! pgrep -f "$W" >/dev/null && break
    sleep 0.1
  done
  if [ "$rc" -eq 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$W"; else echo "logs kept in $W" >&2; fi
}
trap cleanup EXIT

. bench/lib.sh
install_missing /usr/sbin/postfix postfix
install_missing /usr/lib/dovecot/lmtp dovecot-lmtpd
vmail_user

go build -o "$W/roost" ./cmd/roost
go build -o "$W/smtpload" ./bench/smtpload

ports_free 21025 21026

# --- Dovecot: LMTP only, maildir, every address of x.test a user.
mkdir -p "$W/dovecot/mail" "$W/dovecot/run"; chown -R vmail:vmail "$W/dovecot/mail"
echo "nobody@x.test:{PLAIN}unused" >"$W/dovecot/users"
cat >"$W/dovecot/dovecot.conf" <<CONF
protocols = lmtp
base_dir = $W/dovecot/run
log_path = $W/dovecot/log
ssl = no
mail_location = maildir:$W/dovecot/mail/%u
mail_uid = vmail
mail_gid = vmail
first_valid_uid = 1
passdb {
  driver = passwd-file
  args = $W/dovecot/users
}
userdb {
  driver = static
  args = uid=vmail gid=vmail home=$W/dovecot/mail/%u allow_all_users=yes
}
service lmtp {
  unix_listener lmtp {
    mode = 0666
  }
}
CONF
# A daemon keeps the descriptors it is started with: not the caller's pipe.
dovecot -c "$W/dovecot/dovecot.conf" </dev/null >"$W/dovecot/start.log" 2>&1
for _ in $(seq 50); do [ -S "$W/dovecot/run/lmtp" ] && break; sleep 0.1; done

# --- Postfix: its own config and queue directories, nothing chrooted,
# x.test a virtual mailbox domain delivered by LMTP to the Dovecot above.
mkdir -p "$PF/conf" "$PF/spool" "$PF/data"
chown postfix "$PF/data"
: >"$PF/conf/vmailbox"
for i in $(seq 0 $((RCPTS-1))); do echo "u$i@x.test x" >>"$PF/conf/vmailbox"; done
cat >"$PF/conf/main.cf" <<CONF
compatibility_level = 3.6
queue_directory = $PF/spool
data_directory = $PF/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.bench.test
mydomain = bench.test
myorigin = bench.test
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = x.test
virtual_mailbox_maps = texthash:$PF/conf/vmailbox
virtual_transport = lmtp:unix:$W/dovecot/run/lmtp
smtpd_recipient_restrictions = permit_mynetworks, reject_unauth_destination
maillog_file = $PF/log
maillog_file_prefixes = $W
biff = no
CONF
cat >"$PF/conf/master.cf" <<CONF
127.0.0.1:21025 inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
lmtp      unix  - - n - - lmtp
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
CONF
# Postfix reports a bad configuration only to syslog or a terminal.
if ! postfix -c "$PF/conf" start </dev/null >"$PF/start.log" 2>&1; then
  script -qc "postfix -c $PF/conf check" /dev/null >&2 || true
  exit 1
fi
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/21025) 2>/dev/null && break; sleep 0.2; done

# --- Roost: embedded store, MX only.
cat >"$W/roost.toml" <<CONF
hostname = "mx.bench.test"
data_dir = "$W/roost-data"
CONF
roost_listen_only smtp 127.0.0.1:21026 >>"$W/roost.toml"
export ROOST_CONFIG="$W/roost.toml"
"$W/roost" domain add x.test
for i in $(seq 0 $((RCPTS-1))); do echo pw | "$W/roost" user add "u$i@x.test" --password-stdin >/dev/null; done
roost_serve "$W" 127.0.0.1:21026

# maildir_count: messages Dovecot has delivered so far, all recipients.
maildir_count() { find "$W/dovecot/mail" -path '*/new/*' -type f 2>/dev/null | wc -l; }

# run_postfix CLIENTS: prints "accepted=R delivered=D" (msgs/s).
run_postfix() {
  local before want t0 out acc n t1
  before=$(maildir_count)
  want=$((before + N * RCPTS))
  t0=$(date +%s.%N)
  if ! out=$("$W/smtpload" -addr 127.0.0.1:21025 -clients "$1" -n "$N" -rcpts "$RCPTS"); then
    tail -20 "$PF/log" >&2; return 1
  fi
  acc=${out##*msgs_per_sec=}
  for _ in $(seq 3000); do
    n=$(maildir_count)
    [ "$n" -ge "$want" ] && break
    sleep 0.1
  done
  t1=$(date +%s.%N)
  if [ "$n" -lt "$want" ]; then
    echo "postfix delivered $((n - before)) of $((N * RCPTS)) within 300 s" >&2
    tail -20 "$PF/log" >&2; return 1
  fi
  awk -v a="$acc" -v n="$N" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "accepted=%.0f delivered=%.0f\n", a, n/(t1-t0)}'
}

run_roost() {
  local out
  if ! out=$("$W/smtpload" -addr 127.0.0.1:21026 -clients "$1" -n "$N" -rcpts "$RCPTS"); then
    tail -20 "$W/roost.log" >&2; return 1
  fi
  printf 'accepted=%.0f delivered=%.0f\n' "${out##*msgs_per_sec=}" "${out##*msgs_per_sec=}"
}

for n in "${CLIENTS[@]}"; do
  RATIOS=()
  for round in $(seq "$ROUNDS"); do
    if [ $((round % 2)) -eq 1 ]; then
      p=$(run_postfix "$n"); r=$(run_roost "$n")
    else
      r=$(run_roost "$n"); p=$(run_postfix "$n")
    fi
    echo "round=$round clients=$n rcpts=$RCPTS postfix+dovecot $p"
    echo "round=$round clients=$n rcpts=$RCPTS roost           $r"
    pd=${p##*delivered=}; rd=${r##*delivered=}
    awk -v r="$rd" -v d="$pd" 'BEGIN{printf "delivered roost/postfix+dovecot = %.2fx\n", r/d}'
    RATIOS+=("$(awk -v r="$rd" -v d="$pd" 'BEGIN{printf "%.4f", r/d}')")
  done
  printf '%s\n' "${RATIOS[@]}" | sort -n | awk -v n="$n" '{v[NR]=$1} END{med=(NR%2)?v[(NR+1)/2]:(v[NR/2]+v[NR/2+1])/2; printf "clients=%d median of %d rounds delivered roost/postfix+dovecot = %.2fx\n", n, NR, med}'
done
